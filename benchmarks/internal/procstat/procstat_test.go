package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// Made-up /proc/PID/stat lines; fields 14 and 15 are utime and stime.
	tail := " S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 9 0 100 2000 300\n"
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		{"plain name", "4242 (benchserver)" + tail, 281, false},
		{"name with spaces and parens", "4242 (a b) (c))" + tail, 281, false},
		{"no name", "4242 benchserver" + tail, 0, true},
		{"too few fields", "4242 (x) S 1 2 3", 0, true},
		{"utime not a number", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 x 31 0", 0, true},
		{"stime not a number", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 1 y 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("ticks = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\tbenchserver\nVmPeak:\t 1300000 kB\nVmHWM:\t   15872 kB\nVmRSS:\t   14000 kB\nThreads:\t7\n"
	tests := []struct {
		name    string
		status  string
		field   string
		want    int64
		wantErr bool
	}{
		{"VmHWM", status, "VmHWM", 15872, false},
		{"VmRSS", status, "VmRSS", 14000, false},
		{"missing", status, "VmSwap", 0, true},
		{"no unit", "VmHWM:\t12\n", "VmHWM", 0, true},
		{"prefix is not a match", "VmHWMx:\t12 kB\n", "VmHWM", 0, true},
		{"not a number", "VmHWM:\tabc kB\n", "VmHWM", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatusKiB([]byte(tt.status), tt.field)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseSystemBusy(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		// user 100, nice 1, system 50, idle 1000, iowait 7, irq 2,
		// softirq 3, steal 4; guest fields are not added again.
		{"full line", "cpu  100 1 50 1000 7 2 3 4 90 0\ncpu0 1 2 3 4\n", 160, false},
		{"old kernel, fewer fields", "cpu 100 1 50 1000\n", 151, false},
		{"no cpu line", "intr 1 2 3\n", 0, true},
		{"not a number", "cpu 100 x 50 1000 7\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSystemBusy([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseCPUModel(t *testing.T) {
	tests := []struct {
		name, cpuinfo, want string
	}{
		{"x86", "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n", "AMD EPYC 7B13"},
		{"none", "processor\t: 0\nBogoMIPS\t: 50.00\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseCPUModel([]byte(tt.cpuinfo)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSelfAndProcess(t *testing.T) {
	// The real files of this process parse, and CPU time grows with work.
	// The spinning goes on until both counters have seen 20 ms of it,
	// within a wall-clock bound: on a busy machine the spinning thread gets
	// only part of a core, so a fixed wall time would prove nothing. The
	// kernel's /proc/PID/stat counts in clock ticks and can lag getrusage's
	// count by a tick, so each is waited for on its own.
	before, err := SelfCPU()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for x := 0; ; x++ {
		_ = x * x
		if x%(1<<16) != 0 {
			continue
		}
		now, err := SelfCPU()
		if err != nil {
			t.Fatal(err)
		}
		cpu, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now-before >= 20*time.Millisecond && cpu >= 20*time.Millisecond {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("over 10 s of spinning, SelfCPU grew by %v and ProcessCPU reached %v", now-before, cpu)
		}
	}
	if rss, err := PeakRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Fatalf("PeakRSS = %d, %v", rss, err)
	}
}
