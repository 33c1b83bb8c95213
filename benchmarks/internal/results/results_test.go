package results

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestAggregate(t *testing.T) {
	rep := func(qps, p99 float64, errs uint64, failed bool) Row {
		return Row{Kind: KindCase, Impl: "grpc", QPS: qps, P99US: p99, Calls: uint64(qps), Errors: errs, Failed: failed}
	}
	tests := []struct {
		name                   string
		reps                   []Row
		qps, qpsMin, qpsMax    float64
		p99                    float64
		calls, errors          uint64
		failed                 bool
		wantFailReasonNonEmpty bool
	}{
		{"one", []Row{rep(100, 5, 0, false)}, 100, 0, 0, 5, 100, 0, false, false},
		{"three: median and range", []Row{rep(300, 9, 1, false), rep(100, 5, 0, false), rep(200, 7, 2, false)}, 200, 100, 300, 7, 600, 3, false, false},
		{"even count: mean of the middle two", []Row{rep(100, 4, 0, false), rep(300, 8, 0, false)}, 200, 100, 300, 6, 400, 0, false, false},
		{"a failed repetition is left out of the medians", []Row{rep(100, 4, 0, false), rep(0, 0, 9, true), rep(300, 8, 0, false)}, 200, 100, 300, 6, 400, 9, false, true},
		{"all failed", []Row{rep(0, 0, 1, true), rep(0, 0, 2, true)}, 0, 0, 0, 0, 0, 1, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Aggregate(tt.reps)
			if got.QPS != tt.qps || got.QPSMin != tt.qpsMin || got.QPSMax != tt.qpsMax {
				t.Errorf("qps %v (%v–%v), want %v (%v–%v)", got.QPS, got.QPSMin, got.QPSMax, tt.qps, tt.qpsMin, tt.qpsMax)
			}
			if got.P99US != tt.p99 {
				t.Errorf("p99 %v, want %v", got.P99US, tt.p99)
			}
			if got.Calls != tt.calls || got.Errors != tt.errors {
				t.Errorf("calls/errors %d/%d, want %d/%d", got.Calls, got.Errors, tt.calls, tt.errors)
			}
			if got.Failed != tt.failed || (got.FailReason != "") != tt.wantFailReasonNonEmpty {
				t.Errorf("failed %v %q", got.Failed, got.FailReason)
			}
			if got.Reps != len(tt.reps) {
				t.Errorf("reps %d, want %d", got.Reps, len(tt.reps))
			}
		})
	}
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	rows := []Row{
		{Kind: KindCase, Impl: "raw-pipe", Callers: 64, PayloadBytes: 64, QPS: 1e6, FramesPerWrite: 12.5, Machine: Machine{Cores: 2}},
		{Kind: KindBurst, Impl: "v1", Callers: 20000, Errors: 3, ErrorSamples: []string{"3× boom"}, Failed: true, FailReason: "x"},
	}
	if err := Save(path, rows); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].StartedAt, rows[i].StartedAt = rows[i].StartedAt, got[i].StartedAt
	}
	if !reflect.DeepEqual(got, rows) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, rows)
	}
}
