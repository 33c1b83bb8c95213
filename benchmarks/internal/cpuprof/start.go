package cpuprof

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// StartProfile starts a CPU profile into path, if it is not "", at hz
// samples per second (0: runtime/pprof's 100), and returns the function
// that stops it and closes the file; that function may be called more than
// once.
//
// runtime/pprof always asks for 100 samples a second; a rate set before
// it asks stays, and the runtime then prints that it cannot set the rate
// ("runtime: cannot set cpu profile rate until previous profile has
// finished"), which is expected. The profile records the rate in force.
func StartProfile(path string, hz int) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if hz > 0 && hz != 100 {
		runtime.SetCPUProfileRate(hz)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	var done error
	stopped := false
	return func() error {
		if !stopped {
			stopped = true
			pprof.StopCPUProfile()
			done = f.Close()
		}
		return done
	}, nil
}
