//go:build !linux

package pin

import (
	"errors"
	"os/exec"
)

var errUnsupported = errors.New("pin: CPU affinity is only supported on Linux")

// Allowed reports whether this process may run on CPU cpu; elsewhere than
// Linux it cannot tell.
func Allowed(int) (bool, error) { return false, errUnsupported }

// PinnedTo reports false elsewhere than Linux.
func PinnedTo(int) (bool, error) { return false, errUnsupported }

// Start starts cmd and returns a channel that receives cmd.Wait's result.
// Elsewhere than Linux, cpu must be negative.
func Start(cmd *exec.Cmd, cpu int) (<-chan error, error) {
	if cpu >= 0 {
		return nil, errUnsupported
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	return waited, nil
}

// Reexec fails elsewhere than Linux.
func Reexec(int) (int, error) { return 0, errUnsupported }
