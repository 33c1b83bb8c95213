//go:build !linux

package procstat

import (
	"errors"
	"time"
)

// SelfCPU fails elsewhere than Linux.
func SelfCPU() (time.Duration, error) {
	return 0, errors.New("procstat: getrusage is read only on Linux")
}

// MaxOpenFiles returns 0 elsewhere than Linux: unknown.
func MaxOpenFiles() uint64 { return 0 }
