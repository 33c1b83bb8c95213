package procstat

import (
	"time"

	"golang.org/x/sys/unix"
)

// SelfCPU returns the CPU time (user + system) the calling process has used
// so far, from getrusage(RUSAGE_SELF): every thread, to the microsecond.
func SelfCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// MaxOpenFiles returns the soft limit on open descriptors (RLIMIT_NOFILE).
func MaxOpenFiles() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}
