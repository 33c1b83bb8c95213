package runner

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"myrpc/benchmarks/internal/pin"
	"myrpc/benchmarks/internal/tail"
)

// Server says how to start a bench server process: Path with Args, then
// the flags -impl, -addr and maybe -cpu, with Env added to this process's
// environment.
type Server struct {
	Path string
	Args []string
	Env  []string
}

// serverProc is a running bench server.
type serverProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *tail.Buffer

	// exited is closed when the process has ended; waitErr is then set.
	exited  chan struct{}
	waitErr error
	// stdoutDone is closed when standard output reaches its end; stats is
	// then set if the server printed them.
	stdoutDone chan struct{}
	stats      map[string]float64
	statsErr   error
}

// startServer starts a bench server for impl on a free loopback port and
// waits for its READY line.
func startServer(ctx context.Context, cfg Config, impl string) (*serverProc, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	args := append(slices.Clone(cfg.Server.Args), "-impl", impl, "-addr", "127.0.0.1:0")
	env := append(os.Environ(), cfg.Server.Env...)
	if cfg.ServerCPU >= 0 {
		args = append(args, "-cpu", strconv.Itoa(cfg.ServerCPU))
		env = append(env, "GOMAXPROCS=1")
	}
	cmd := exec.Command(cfg.Server.Path, args...)
	cmd.Env = env
	cmd.Stdout = pw
	p := &serverProc{cmd: cmd, stderr: &tail.Buffer{Max: 4 << 10}, exited: make(chan struct{}), stdoutDone: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.SysProcAttr = procAttr()
	waited, err := pin.Start(cmd, cfg.ServerCPU)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("starting %s: %w", cfg.Server.Path, err)
	}
	go func() {
		p.waitErr = <-waited
		close(p.exited)
	}()
	ready := make(chan string, 1)
	go p.readStdout(pr, ready)

	t := time.NewTimer(cfg.startTimeout())
	defer t.Stop()
	select {
	case addr := <-ready:
		p.addr = addr
		return p, nil
	case <-p.exited:
		<-p.stdoutDone
		return nil, fmt.Errorf("the server exited before it was ready (%v): %s", p.waitErr, p.stderr.String())
	case <-t.C:
		p.kill()
		return nil, fmt.Errorf("the server was not ready within %v: %s", cfg.startTimeout(), p.stderr.String())
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

// readStdout reads the server's protocol lines: READY, then maybe STATS.
func (p *serverProc) readStdout(pr *os.File, ready chan<- string) {
	defer close(p.stdoutDone)
	defer pr.Close()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "READY "):
			select {
			case ready <- strings.TrimPrefix(line, "READY "):
			default:
			}
		case strings.HasPrefix(line, "STATS "):
			var st map[string]float64
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "STATS ")), &st); err != nil {
				p.statsErr = fmt.Errorf("bad STATS line %q: %w", line, err)
				continue
			}
			p.stats = st
		}
	}
}

// pid returns the server's process id.
func (p *serverProc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits for the server to exit, killing it if it
// takes longer than stopTimeout. It returns what the server reported.
func (p *serverProc) stop() (map[string]float64, error) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.kill()
		return nil, fmt.Errorf("the server did not stop within %v after SIGTERM; killed: %s", stopTimeout, p.stderr.String())
	}
	select {
	case <-p.stdoutDone:
	case <-time.After(time.Second):
		return nil, errors.New("the server's standard output stayed open after it exited")
	}
	if p.waitErr != nil {
		return nil, fmt.Errorf("the server exited with %v: %s", p.waitErr, p.stderr.String())
	}
	return p.stats, p.statsErr
}

// kill ends the server at once and waits for it.
func (p *serverProc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}
