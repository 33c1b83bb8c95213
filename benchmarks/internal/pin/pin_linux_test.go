package pin

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestStartPinned(t *testing.T) {
	for _, cpu := range []int{-1, 0} {
		t.Run(map[int]string{-1: "anywhere", 0: "cpu 0"}[cpu], func(t *testing.T) {
			if ok, err := Allowed(0); err != nil || !ok {
				t.Skipf("CPU 0 is not available here (%v)", err)
			}
			var out bytes.Buffer
			cmd := exec.Command("grep", "Cpus_allowed_list", "/proc/self/status")
			cmd.Stdout = &out
			waited, err := Start(cmd, cpu)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-waited; err != nil {
				t.Fatal(err)
			}
			got := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out.String()), "Cpus_allowed_list:"))
			if cpu == 0 && got != "0" {
				t.Fatalf("the child may run on CPUs %q, want only 0", got)
			}
			if cpu < 0 && got == "" {
				t.Fatalf("no affinity line in %q", out.String())
			}
		})
	}
}

func TestStartFails(t *testing.T) {
	if _, err := Start(exec.Command("/nonexistent/program"), -1); err == nil {
		t.Fatal("starting a program that does not exist succeeded")
	}
	if _, err := Start(exec.Command("true"), 1<<20); err == nil {
		t.Fatal("pinning to a CPU that does not exist succeeded")
	}
}
