package soak

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"myrpc/benchmarks/internal/procstat"
	"myrpc/benchmarks/internal/tail"
)

// Times the server supervisor allows.
const (
	// startTimeout bounds a server's start, from exec to READY.
	startTimeout = 10 * time.Second
	// termTimeout bounds a server's exit after SIGTERM. The bench server
	// gives its graceful stop 5 s, then exits.
	termTimeout = 10 * time.Second
	// restartTimeout bounds the retries of a restart whose port is not
	// free yet.
	restartTimeout = 5 * time.Second
)

// server runs the bench server of one stage, one process at a time, always
// on the same address once the first has chosen a port.
type server struct {
	path  string
	stage string
	addr  string

	// mu protects proc.
	mu   sync.Mutex
	proc *process
}

// process is one bench server process.
type process struct {
	cmd    *exec.Cmd
	stderr *tail.Buffer
	// exited is closed when the process has ended and been reaped;
	// waitErr is set then.
	exited  chan struct{}
	waitErr error
}

// start starts a server process on s.addr (on a free port the first time)
// and waits for its READY line.
func (s *server) start(ctx context.Context) error {
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(s.path, "-impl", s.stage, "-addr", addr, "-faults")
	cmd.Stdout = pw
	p := &process{cmd: cmd, stderr: &tail.Buffer{Max: 4 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.SysProcAttr = procAttr()
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return fmt.Errorf("starting %s: %w", s.path, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	ready := make(chan string, 1)
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				select {
				case ready <- a:
				default:
				}
			}
		}
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case a := <-ready:
		s.mu.Lock()
		s.addr = a
		s.proc = p
		s.mu.Unlock()
		return nil
	case <-p.exited:
		return fmt.Errorf("the server exited before it was ready (%v): %s", p.waitErr, p.stderr.String())
	case <-t.C:
		p.kill()
		return fmt.Errorf("the server was not ready within %v: %s", startTimeout, p.stderr.String())
	case <-ctx.Done():
		p.kill()
		return ctx.Err()
	}
}

// restart starts a server again on the same address. The old one's port
// can take a moment to be free; restart tries again until restartTimeout.
func (s *server) restart(ctx context.Context) error {
	deadline := time.Now().Add(restartTimeout)
	for {
		err := s.start(ctx)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// current returns the running process, or nil.
func (s *server) current() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// crashed returns the running process if it has exited without being
// asked to, and forgets it; else nil.
func (s *server) crashed() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	select {
	case <-p.exited:
		s.proc = nil
		return p
	default:
		return nil
	}
}

// take forgets the running process and returns it, before the supervisor
// signals it: crashed then no longer sees it.
func (s *server) take() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	return p
}

// kill ends the running server with SIGKILL and waits for it.
func (s *server) kill() {
	if p := s.take(); p != nil {
		p.kill()
	}
}

// term stops the running server with SIGTERM and waits for it to exit.
// It returns an error if the server did not exit within termTimeout (it is
// then killed) or exited with a failure.
func (s *server) term() error {
	p := s.take()
	if p == nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(termTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.kill()
		return fmt.Errorf("the server did not exit within %v of SIGTERM; killed: %s", termTimeout, p.stderr.String())
	}
	if p.waitErr != nil {
		return fmt.Errorf("the server exited with %v after SIGTERM: %s", p.waitErr, p.stderr.String())
	}
	return nil
}

func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// usage is what a server process holds.
type usage struct {
	rssKiB int64
	fds    int
}

// measure reads the process's resident memory and counts its open files.
func (p *process) measure() (usage, error) {
	pid := p.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return usage{}, err
	}
	rss, err := procstat.ParseStatusKiB(b, "VmRSS")
	if err != nil {
		return usage{}, err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return usage{}, err
	}
	return usage{rssKiB: rss, fds: len(fds)}, nil
}
