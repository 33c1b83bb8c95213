package rpctest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
)

// childEnv marks the test binary started by testR24EMFILE as the child that
// runs a server under a low descriptor limit.
const childEnv = "MYRPC_RPCTEST_EMFILE_CHILD"

func isChild() bool { return os.Getenv(childEnv) != "" }

// testR24EMFILE runs a server of the stage in a child process (this same
// test binary, running only this subtest) whose RLIMIT_NOFILE is a few
// descriptors above what it has open. The parent opens more connections
// than that, so the child's accept fails with EMFILE while connections wait
// in its backlog. The child must back off (little CPU), log the streak once,
// and serve again once descriptors free up.
func testR24EMFILE(t *testing.T, stage Stage) {
	if isChild() {
		runEMFILEChild(t, stage)
		return
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to read the child's CPU time")
	}
	var run []string
	for _, part := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(run, "/"), "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	childDone := make(chan error, 1)
	out := &logBuffer{}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			out.Write([]byte(line + "\n"))
			if a, ok := strings.CutPrefix(line, "EMFILE-CHILD-ADDR "); ok {
				addrc <- a
			}
		}
		childDone <- cmd.Wait()
	}()
	defer func() {
		stdin.Close()
		select {
		case err := <-childDone:
			if err != nil {
				t.Errorf("the child failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, logs)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("the child did not exit\nstdout:\n%s\nstderr:\n%s", out, logs)
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(20 * time.Second):
		t.Fatalf("the child did not start a server\nstdout:\n%s\nstderr:\n%s", out, logs)
	}

	// Exhaust the child's descriptors: its accept now fails with EMFILE
	// while these connections wait in the backlog.
	var conns []net.Conn
	for range 40 {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
	}
	if !waitFor(10*time.Second, func() bool { return logs.count("accept failed") > 0 }) {
		t.Fatalf("the child never reported an accept failure\nstderr:\n%s", logs)
	}
	before, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the measurement window
	after, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// A busy accept loop burns a whole core: ~100 ticks a second.
	if used := after - before; used > 20 {
		t.Errorf("the child used %d CPU ticks in 1 s of EMFILE: it is not backing off", used)
	}
	if n := logs.count("accept failed"); n > 2 {
		t.Errorf("the child logged %d accept failures in one streak", n)
	}

	// Free the descriptors; the child must serve again.
	for _, c := range conns {
		c.Close()
	}
	c := stage.NewClient(addr, ClientConfig{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: "again"})
	if err != nil || reply.Msg != "Hello again" {
		t.Fatalf("after EMFILE: %v, %v\nstderr:\n%s", reply, err, logs)
	}
	t.Logf("child's log:\n%s", logs)
}

// runEMFILEChild is the child's side: a server under a low descriptor limit,
// until stdin closes.
func runEMFILEChild(t *testing.T, stage Stage) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := stage.NewServer(ServerConfig{Logger: log})
	helloworld.RegisterGreeterServer(srv, services.Greeter{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	limit := uint64(len(fds) + 8)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: limit, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	// The parent reads the address from the child's standard output.
	fmt.Fprintf(os.Stdout, "EMFILE-CHILD-ADDR %s\n", lis.Addr())
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	<-served
}

// cpuTicks returns a process's user + system CPU time in clock ticks, from
// /proc/PID/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from the closing parenthesis.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var utime, stime int64
	if _, err := fmt.Sscan(fields[11], &utime); err != nil {
		return 0, err
	}
	if _, err := fmt.Sscan(fields[12], &stime); err != nil {
		return 0, err
	}
	return utime + stime, nil
}
