package pin

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Allowed reports whether this process may run on CPU cpu.
func Allowed(cpu int) (bool, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return false, os.NewSyscallError("sched_getaffinity", err)
	}
	return set.IsSet(cpu), nil
}

// PinnedTo reports whether the calling thread, and so a process started
// pinned, runs on CPU cpu alone.
func PinnedTo(cpu int) (bool, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return false, os.NewSyscallError("sched_getaffinity", err)
	}
	return set.Count() == 1 && set.IsSet(cpu), nil
}

// Start starts cmd and returns a channel that receives cmd.Wait's result.
// If cpu >= 0, cmd runs on CPU cpu alone. cmd is started from a locked OS
// thread that stays with it until it exits, so cmd may use
// SysProcAttr.Pdeathsig, which fires when the starting thread ends.
func Start(cmd *exec.Cmd, cpu int) (<-chan error, error) {
	started := make(chan error, 1)
	waited := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, and its changed mask, end with this
		// goroutine.
		runtime.LockOSThread()
		if cpu >= 0 {
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				started <- os.NewSyscallError("sched_setaffinity", err)
				return
			}
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return waited, nil
}

// Reexec runs this program again with the same arguments on CPU cpu alone,
// with GOMAXPROCS=1, passing standard input and output through and
// forwarding SIGINT and SIGTERM. It returns the program's exit status.
func Reexec(cpu int) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	waited, err := Start(cmd, cpu)
	if err != nil {
		return 0, err
	}
	for {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
		case err := <-waited:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode(), nil
			}
			return 0, err
		}
	}
}
