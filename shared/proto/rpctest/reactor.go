package rpctest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
)

// testR22Backpressure: a client that stops reading while the server has
// 64 MiB of responses for it. The server's writes fill the socket, its
// queue fills, it stops reading that connection, and nothing spins; when
// the client reads again, every response arrives whole and intact. A
// client that then goes away with responses still queued is let go at once.
func testR22Backpressure(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	const (
		calls   = 64
		payload = 1 << 20
	)
	c := dialRaw(t, e.addr)
	want := make(map[uint32][]byte, calls)
	frames := make([][]byte, 0, calls)
	for i := range calls {
		p := make([]byte, payload)
		rand.Read(p)
		seq := uint32(i + 1)
		want[seq] = p
		frames = append(frames, request(t, seq, "myrpc.echo.Echo", "Echo", 0, &echo.EchoRequest{Payload: p}))
	}
	// The requests go out in a goroutine: once the server stops reading,
	// the writes block, as they should.
	sent := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		for _, f := range frames {
			if _, err := c.Write(f); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()

	// Stalled: the client reads nothing. Once the server has done the
	// work it had read (slow under -race: megabytes of protobuf), this
	// process, which runs the server, must go quiet: a server that spins
	// on a full socket never does.
	quiet := false
	for deadline := time.Now().Add(20 * time.Second); !quiet && time.Now().Before(deadline); {
		before := cpuTime()
		time.Sleep(250 * time.Millisecond) // a measurement window
		quiet = cpuTime()-before < 50*time.Millisecond
	}
	if !quiet {
		t.Errorf("the process kept using CPU for 20 s while the client did not read: something spins")
	}
	// And the server has stopped reading this connection: with its queue
	// full it takes no more requests, so the client's writes are stuck.
	select {
	case err := <-sent:
		t.Fatalf("all 64 MiB of requests were read while nothing was answered (%v): the queue is not bounded", err)
	default:
	}

	// Resume: every response, whole, matching its request.
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for range calls {
		rsp, err := readResponse(c)
		if err != nil {
			t.Fatalf("reading the responses: %v", err)
		}
		if rsp.meta.Code != 0 {
			t.Fatalf("seq %d: code %d %q", rsp.seq, rsp.meta.Code, rsp.meta.Message)
		}
		var reply echo.EchoReply
		if err := proto.Unmarshal(rsp.body, &reply); err != nil {
			t.Fatal(err)
		}
		p, ok := want[rsp.seq]
		if !ok {
			t.Fatalf("a response for seq %d, twice or never asked for", rsp.seq)
		}
		if !bytes.Equal(reply.Payload, p) {
			t.Fatalf("seq %d: the payload came back changed", rsp.seq)
		}
		delete(want, rsp.seq)
	}
	if err := <-sent; err != nil {
		t.Fatalf("sending: %v", err)
	}

	// Stall again, then leave with responses queued: the server drops them
	// and closes the connection without spinning.
	baseline := runtime.NumGoroutine()
	c2 := dialRaw(t, e.addr)
	go func() {
		c2.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for _, f := range frames[:16] {
			if _, err := c2.Write(f); err != nil {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // let the server's queue fill
	c2.SetLinger(0)
	c2.Close()
	expectGoroutines(t, baseline)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := helloworld.NewGreeterClient(e.client(ClientConfig{})).Hello(ctx, &helloworld.HelloRequest{Msg: "still here"})
	if err != nil || reply.Msg != "Hello still here" {
		t.Fatalf("a call after the stalled clients: %v, %v", reply, err)
	}
}

// testR25Stall: connections that stop in the middle of a frame hold up no
// other connection: a reactor never waits for the rest of a frame.
func testR25Stall(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{FrameTimeout: 30 * time.Second})
	frame := request(t, 1, "myrpc.helloworld.Greeter", "Hello", 0, &helloworld.HelloRequest{Msg: "never finished"})
	// Enough stalled connections to land on every reactor.
	for range 16 {
		s := dialRaw(t, e.addr)
		s.send(frame[:len(frame)/2])
	}
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const calls = 100
	lat := make([]time.Duration, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			msg := fmt.Sprint(i)
			r, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: msg})
			lat[i] = time.Since(start)
			if err != nil || r.Msg != "Hello "+msg {
				t.Errorf("call %d: %v, %v", i, r, err)
			}
		}()
	}
	wg.Wait()
	var worst time.Duration
	for _, d := range lat {
		worst = max(worst, d)
	}
	// A reactor stuck on a stalled frame would hold its connections for
	// the frame timeout, 30 s here.
	if worst > 2*time.Second {
		t.Fatalf("the slowest of %d calls took %v with stalled connections open", calls, worst)
	}
	t.Logf("slowest of %d calls: %v", calls, worst)
}

// cpuTime returns this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
