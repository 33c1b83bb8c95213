package interceptor_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"myrpc/shared/proto/codes"
	"myrpc/v5-cluster/interceptor"
)

// makeCalls makes 3 good calls, 2 that fail with NotFound and 1 with
// Unknown, through a server and a client that record metrics on reg.
func makeCalls(t *testing.T, reg prometheus.Registerer) {
	t.Helper()
	sm, err := interceptor.NewServerMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := interceptor.NewClientMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, sm.Interceptor())
	c := newClient(t, addr, cm.Interceptor())
	for _, tt := range []struct {
		msg  string
		n    int
		code codes.Code
	}{
		{"world", 3, codes.OK},
		{"fail", 2, codes.NotFound},
		{"plain", 1, codes.Unknown},
	} {
		for range tt.n {
			if got := hello(t, c, tt.msg); got != tt.code {
				t.Fatalf("Hello(%q): code %v, want %v", tt.msg, got, tt.code)
			}
		}
	}
}

const wantCounts = `
# HELP myrpc_client_calls_total Calls made, by method.
# TYPE myrpc_client_calls_total counter
myrpc_client_calls_total{method="/myrpc.helloworld.Greeter/Hello"} 6
# HELP myrpc_client_errors_total Calls made that failed, by method and status code.
# TYPE myrpc_client_errors_total counter
myrpc_client_errors_total{code="NotFound",method="/myrpc.helloworld.Greeter/Hello"} 2
myrpc_client_errors_total{code="Unknown",method="/myrpc.helloworld.Greeter/Hello"} 1
# HELP myrpc_server_calls_total Calls handled, by method.
# TYPE myrpc_server_calls_total counter
myrpc_server_calls_total{method="/myrpc.helloworld.Greeter/Hello"} 6
# HELP myrpc_server_errors_total Calls handled that failed, by method and status code.
# TYPE myrpc_server_errors_total counter
myrpc_server_errors_total{code="NotFound",method="/myrpc.helloworld.Greeter/Hello"} 2
myrpc_server_errors_total{code="Unknown",method="/myrpc.helloworld.Greeter/Hello"} 1
`

// TestMetrics: after the calls, the registry holds each side's calls per
// method, errors per method and code, and a latency histogram with one
// observation per call.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	makeCalls(t, reg)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantCounts),
		"myrpc_client_calls_total", "myrpc_client_errors_total", "myrpc_server_calls_total", "myrpc_server_errors_total"); err != nil {
		t.Error(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	histograms := 0
	for _, f := range families {
		if !strings.HasSuffix(f.GetName(), "_latency_seconds") {
			continue
		}
		for _, m := range f.GetMetric() {
			histograms++
			h := m.GetHistogram()
			if h.GetSampleCount() != 6 || h.GetSampleSum() <= 0 {
				t.Errorf("%s: %d observations summing to %v s, want 6", f.GetName(), h.GetSampleCount(), h.GetSampleSum())
			}
			if n := len(h.GetBucket()); n != len(interceptor.DefaultBuckets) {
				t.Errorf("%s: %d buckets, want %d", f.GetName(), n, len(interceptor.DefaultBuckets))
			}
		}
	}
	if histograms != 2 {
		t.Errorf("%d latency histograms, want the server's and the client's", histograms)
	}
}

// TestMetricsRegisterTwice: a second set of metrics on the same registry
// is refused, and the refusal leaves the registry as it was.
func TestMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := interceptor.NewServerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := interceptor.NewServerMetrics(reg); err == nil {
		t.Fatal("NewServerMetrics registered the same metrics twice")
	}
	// The failed registration took nothing out: the first's metrics are
	// still there, and a third registration fails as the second did.
	if _, err := interceptor.NewServerMetrics(reg); err == nil {
		t.Fatal("a failed NewServerMetrics took the first one's metrics out of the registry")
	}
	if _, err := interceptor.NewClientMetrics(reg, 0.001, 0.01); err != nil {
		t.Fatalf("the client's metrics beside the server's: %v", err)
	}
	if _, err := interceptor.NewServerMetrics(nil); err == nil {
		t.Error("NewServerMetrics(nil) did not fail")
	}
}

// TestServeMetrics: the metrics are served at /metrics on the address, in
// Prometheus' text format, until Close.
func TestServeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	makeCalls(t, reg)
	ms, err := interceptor.ServeMetrics("127.0.0.1:0", reg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	rsp, err := hc.Get("http://" + ms.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rsp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", rsp.Status)
	}
	for _, want := range []string{
		`myrpc_server_calls_total{method="/myrpc.helloworld.Greeter/Hello"} 6`,
		`myrpc_client_errors_total{code="NotFound",method="/myrpc.helloworld.Greeter/Hello"} 2`,
		`myrpc_server_latency_seconds_count{method="/myrpc.helloworld.Greeter/Hello"} 6`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if err := ms.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ms.Addr()+"/metrics", nil)
	if rsp, err := hc.Do(req); err == nil {
		rsp.Body.Close()
		t.Error("the metrics are still served after Close")
	}
}
