package runner

import (
	"os"
	"os/exec"
	"runtime"
	"strings"

	"myrpc/benchmarks/internal/procstat"
	"myrpc/benchmarks/internal/results"
)

// DescribeMachine describes this machine and build; dir is a folder inside
// the git work tree whose commit is named ("-dirty" when it has changes).
func DescribeMachine(dir string) results.Machine {
	m := results.Machine{
		CPUModel:     procstat.CPUModel(),
		Cores:        runtime.NumCPU(),
		GOMAXPROCS:   runtime.GOMAXPROCS(0),
		GoVersion:    runtime.Version(),
		GitCommit:    gitCommit(dir),
		OS:           runtime.GOOS,
		Arch:         runtime.GOARCH,
		MaxOpenFiles: procstat.MaxOpenFiles(),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func gitCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		commit += "-dirty"
	}
	return commit
}
