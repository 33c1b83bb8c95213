package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
)

// idleChildEnv marks the copy of this test binary that runs the server of
// TestTenThousandIdleConnections.
const idleChildEnv = "MYRPC_IDLE_CHILD"

// TestTenThousandIdleConnections holds 10,000 idle connections open to an
// epoll server and checks that it spends no goroutine on them, and little
// memory. The server runs in a child process (this test binary again), so
// that the two ends of 10,000 connections do not share one process's
// descriptor limit; each process raises its own RLIMIT_NOFILE.
func TestTenThousandIdleConnections(t *testing.T) {
	if os.Getenv(idleChildEnv) != "" {
		runIdleChild(t)
		return
	}
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	const conns = 10000
	raiseNOFILE(t, conns+200)

	cmd := exec.Command(os.Args[0], "-test.run=^TestTenThousandIdleConnections$", "-test.count=1")
	cmd.Env = append(os.Environ(), idleChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("the server process: %v", err)
		}
	}()
	out := bufio.NewScanner(stdout)
	// ask sends a command to the child and returns its one-line answer.
	ask := func(cmd string) string {
		t.Helper()
		fmt.Fprintln(stdin, cmd)
		for out.Scan() {
			if line, ok := strings.CutPrefix(out.Text(), "IDLE-CHILD "); ok {
				return line
			}
		}
		t.Fatalf("the server process stopped answering: %v", out.Err())
		return ""
	}
	addr := ask("addr")
	var g0, heap0 int64
	fmt.Sscan(ask("stats"), &g0, &heap0)

	opened := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range opened {
			c.Close()
		}
	}()
	for len(opened) < conns {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", len(opened)+1, err)
		}
		opened = append(opened, c)
	}
	// Every connection has reached the server once it reports them all.
	var g1, heap1, open int64
	for deadline := time.Now().Add(20 * time.Second); open < conns && time.Now().Before(deadline); {
		fmt.Sscan(ask("stats"), &g1, &heap1, &open)
	}
	if open < conns {
		t.Fatalf("the server holds %d connections, want %d", open, conns)
	}
	t.Logf("%d idle connections: %d goroutines before, %d after; heap %d KiB before, %d KiB after (%d B per connection)",
		conns, g0, g1, heap0>>10, heap1>>10, (heap1-heap0)/conns)
	if g1-g0 > 20 {
		t.Fatalf("%d more goroutines for %d idle connections", g1-g0, conns)
	}
	if per := (heap1 - heap0) / conns; per > 4<<10 {
		t.Fatalf("%d bytes of heap per idle connection", per)
	}
	// And the server still answers, promptly.
	if got := ask("call"); got != "ok" {
		t.Fatalf("a call with 10,000 idle connections open: %s", got)
	}
}

// runIdleChild is the child's side: a V4 server that answers commands on
// standard input until it closes.
func runIdleChild(t *testing.T) {
	raiseNOFILE(t, 10300)
	// Room for the 10,000 and one more: the default cap is 10,000.
	s := New(WithLogger(quietLogger()), WithIdleTimeout(0), WithMaxConns(20000))
	s.useReactor = true // TestMain turned it off for the unit tests
	echo.RegisterEchoServer(s, services.Echo{})
	helloworld.RegisterGreeterServer(s, services.Greeter{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	defer s.Close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "addr":
			fmt.Printf("IDLE-CHILD %s\n", lis.Addr())
		case "stats":
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			var open int
			s.mu.Lock()
			for _, e := range s.engines {
				open += e.Stats().Conns
			}
			s.mu.Unlock()
			fmt.Printf("IDLE-CHILD %d %d %d\n", runtime.NumGoroutine(), ms.HeapAlloc, open)
		case "call":
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := hello(ctx, lis.Addr().String(), "x")
			cancel()
			if err != nil {
				fmt.Printf("IDLE-CHILD %v\n", err)
			} else {
				fmt.Printf("IDLE-CHILD ok\n")
			}
		}
	}
}

// raiseNOFILE raises this process's descriptor limit to at least n, or
// fails the test.
func raiseNOFILE(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur = max(lim.Cur, n)
	lim.Max = max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raising RLIMIT_NOFILE to %d: %v", n, err)
	}
}
