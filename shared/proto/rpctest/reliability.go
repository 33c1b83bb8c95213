package rpctest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/status"
)

// row is one row of the reliability table (RELIABILITY.md).
type row struct {
	num   int
	name  string
	title string
	// notApplicable returns why the row does not apply to a stage, or "".
	notApplicable func(Stage) string
	fn            func(*testing.T, Stage)
}

func always(Stage) string { return "" }

func needsLongConnections(s Stage) string {
	if s.LongConnections {
		return ""
	}
	return s.Name + " closes every connection after one response"
}

func needsReuse(s Stage) string {
	if s.ReusesConnections {
		return ""
	}
	return s.Name + " dials a new connection for every call"
}

func needsMux(s Stage) string {
	if s.Multiplexed {
		return ""
	}
	return s.Name + " has one call in flight per connection"
}

func needsRetries(s Stage) string {
	if s.RetryOptions != nil {
		return ""
	}
	return s.Name + " has no retries: a failed call fails"
}

func needsReactor(s Stage) string {
	if s.Reactor {
		return ""
	}
	return s.Name + " serves each connection with a goroutine of its own and writes each response on its own"
}

func rows() []row {
	return []row{
		{1, "length_fields_near_4GiB", "length fields near 4 GiB", always, testR01HugeLengths},
		{2, "wrong_magic", "wrong magic", always, testR02WrongMagic},
		{3, "wrong_version_or_type", "wrong version or type", always, testR03WrongVersionOrType},
		{4, "truncated_frame_then_EOF", "truncated frame, then EOF", always, testR04Truncated},
		{5, "meta_not_protobuf", "meta that is not protobuf", always, testR05BadMeta},
		{6, "body_not_protobuf", "body that is not protobuf", always, testR06BadBody},
		{7, "unknown_service_or_method", "unknown service or method", always, testR07Unknown},
		{8, "handler_returns_error", "handler returns an error", always, testR08HandlerError},
		{9, "handler_panics", "handler panics", always, testR09Panic},
		{10, "handler_runs_past_deadline", "handler runs past the deadline", always, testR10PastDeadline},
		{11, "caller_cancels", "caller cancels its context", always, testR11CallerCancels},
		{12, "slowloris", "slowloris: a frame dripped a byte at a time", always, testR12Slowloris},
		{13, "thousands_of_idle_connections", "thousands of idle connections", needsLongConnections, testR13IdleConnections},
		{14, "connection_reset_mid_response", "connection reset mid-response", always, testR14ResetMidResponse},
		{15, "shutdown_with_calls_in_flight", "shutdown with calls in flight", always, testR15Shutdown},
		{16, "response_with_unknown_sequence_id", "response with an unknown sequence id", needsMux, testR16UnknownSeq},
		{17, "duplicate_response", "duplicate response", needsMux, testR17Duplicate},
		{18, "sequence_id_wraparound", "sequence id wraparound", needsMux, testR18Wraparound},
		{19, "pool_exhausted", "pool exhausted", needsReuse, testR19PoolExhausted},
		{20, "server_restarted_under_the_pool", "server restarted while the client holds connections", needsReuse, testR20ServerRestarted},
		{21, "retry_of_a_call_that_may_have_run", "retry of a call that may have run", needsRetries, testR21Retry},
		{22, "short_write_or_EAGAIN_on_writev", "short write or EAGAIN on writev", needsReactor, testR22Backpressure},
		{23, "peer_half_closes_after_request", "peer half-closes after its request", always, testR23HalfClose},
		{24, "EMFILE_on_accept", "EMFILE on accept", always, testR24EMFILE},
		{25, "one_connection_stalls_mid_frame", "one connection stalls mid-frame", needsReactor, testR25Stall},
		{26, "many_goroutines_on_shared_tables", "many goroutines on shared tables", always, testR26ManyGoroutines},
	}
}

func (r row) testName() string { return fmt.Sprintf("R%02d_%s", r.num, r.name) }

// Row describes a row of the reliability table, for the pages written
// from the suite's results.
type Row struct {
	// Num is the row's number; Test, its subtest's name under
	// TestReliability; Title, what goes wrong.
	Num   int
	Test  string
	Title string
}

// Rows returns the rows RunReliability runs, in order.
func Rows() []Row {
	var out []Row
	for _, r := range rows() {
		out = append(out, Row{Num: r.num, Test: r.testName(), Title: r.title})
	}
	return out
}

// RunReliability runs one subtest per row of the reliability table, named
// after the row (R01_length_fields_near_4GiB, ...), so that
// `go test -run Reliability -v` reads as the table. A row that does not
// apply to the stage is skipped with the reason.
func RunReliability(t *testing.T, stage Stage) {
	for _, r := range rows() {
		t.Run(r.testName(), func(t *testing.T) {
			if why := r.notApplicable(stage); why != "" {
				t.Skip("not applicable: " + why)
			}
			if r.fn == nil {
				t.Fatalf("row %d applies to %s but has no test", r.num, stage.Name)
			}
			if !isChild() {
				checkLeaks(t)
			}
			r.fn(t, stage)
		})
	}
}

// afterBadFrame checks that the server is still serving after a bad frame:
// on the same connection when the stage keeps connections, else on a new
// one.
func afterBadFrame(t *testing.T, e *env, c *rawConn) {
	t.Helper()
	if e.stage.LongConnections {
		c.send(request(t, 77, "myrpc.helloworld.Greeter", "Hello", 0, &helloworld.HelloRequest{Msg: "again"}))
		rsp, err := c.recv(5 * time.Second)
		if err != nil {
			t.Fatalf("the connection is not usable after the bad frame: %v", err)
		}
		if rsp.seq != 77 || rsp.meta.Code != 0 {
			t.Fatalf("good call after the bad frame: seq %d code %d %q", rsp.seq, rsp.meta.Code, rsp.meta.Message)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := helloworld.NewGreeterClient(e.client(ClientConfig{})).Hello(ctx, &helloworld.HelloRequest{Msg: "again"})
	if err != nil || reply.Msg != "Hello again" {
		t.Fatalf("good call after the bad frame: %v %v", reply, err)
	}
}

func testR01HugeLengths(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	for _, tc := range []struct {
		name             string
		metaLen, bodyLen uint32
		// follow is how much of the claimed body the client sends after
		// the header, before it reads the answer.
		follow int
	}{
		{"meta near 4 GiB", 0xFFFFFFF0, 0, 0},
		{"body near 4 GiB", 16, 0xFFFFFFF0, 0},
		// In 32 bits 0x10 + 0xFFFFFFF8 wraps to 8: the sum must be taken
		// in 64 bits.
		{"sum wraps in 32 bits", 0x10, 0xFFFFFFF8, 0},
		{"both at the maximum", 0xFFFFFFFF, 0xFFFFFFFF, 0},
		{"one byte over the limit", 64, 4<<20 - 63, 0},
		// The answer must survive the unread bytes: closing a socket with
		// unread input makes the kernel send a reset.
		{"over the limit with the body following", 64, 8 << 20, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, e.addr)
			follow := make([]byte, tc.follow)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c.send(header{magic: magic, version: version, typ: typeRequest, seq: 4242,
				metaLen: tc.metaLen, bodyLen: tc.bodyLen}.bytes())
			if tc.follow > 0 {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				c.Write(follow) // may fail once the server closes
			}
			rsp, err := c.recv(5 * time.Second)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if rsp.seq != 4242 || codes.Code(rsp.meta.Code) != codes.ResourceExhausted {
				t.Fatalf("answer: seq %d code %d %q, want seq 4242 code 8", rsp.seq, rsp.meta.Code, rsp.meta.Message)
			}
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
				t.Fatalf("the process allocated %d bytes for a refused header", grown)
			}
			c.expectClosed(5 * time.Second)
		})
	}
}

func testR02WrongMagic(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	// Warm up, so that the goroutines a first connection starts for good
	// (timers, the network poller) are in the baseline.
	afterBadFrame(t, e, dialRaw(t, e.addr))
	baseline := runtime.NumGoroutine()
	c := dialRaw(t, e.addr)
	c.send([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	// The server closes at once: it does not wait for any timeout (the
	// defaults are 10 s and more). The bound leaves room for a loaded
	// machine running tests under -race.
	if d := c.expectClosed(5 * time.Second); d > time.Second {
		t.Fatalf("closed after %v; want at once", d)
	}
	c.Close()
	expectGoroutines(t, baseline)
}

func testR03WrongVersionOrType(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	hello := request(t, 9, "myrpc.helloworld.Greeter", "Hello", 0, &helloworld.HelloRequest{Msg: "x"})
	for _, tc := range []struct {
		name    string
		version uint8
		typ     uint8
		code    codes.Code
	}{
		{"version 0", 0, typeRequest, codes.Unimplemented},
		{"version 2", 2, typeRequest, codes.Unimplemented},
		{"version 255", 255, typeRequest, codes.Unimplemented},
		{"type 0", version, 0, codes.InvalidArgument},
		{"type response", version, typeResponse, codes.InvalidArgument},
		{"type 7", version, 7, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := append([]byte(nil), hello...)
			frame[2], frame[3] = tc.version, tc.typ
			c := dialRaw(t, e.addr)
			c.send(frame)
			rsp, err := c.recv(5 * time.Second)
			if err != nil {
				t.Fatalf("no answer before the close: %v", err)
			}
			if rsp.seq != 9 || codes.Code(rsp.meta.Code) != tc.code {
				t.Fatalf("answer: seq %d code %d %q, want seq 9 code %d", rsp.seq, rsp.meta.Code, rsp.meta.Message, tc.code)
			}
			c.expectClosed(5 * time.Second)
		})
	}
}

func testR04Truncated(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	frame := request(t, 1, faultsService, "Count", 0, &echo.EchoRequest{Payload: []byte("never whole")})
	for _, cut := range []int{1, 10, headerLen, headerLen + 5, len(frame) - 1} {
		t.Run(fmt.Sprintf("%d_of_%d_bytes", cut, len(frame)), func(t *testing.T) {
			c := dialRaw(t, e.addr)
			c.send(frame[:cut])
			c.CloseWrite()
			c.expectClosed(5 * time.Second)
		})
	}
	if n := e.faults.calls.Load(); n != 0 {
		t.Fatalf("the handler ran %d times for truncated frames", n)
	}
}

func testR05BadMeta(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := dialRaw(t, e.addr)
	// 0xFF is a field tag with wire type 7, which does not exist.
	c.send(rawRequest(5, []byte{0xFF, 0xFF, 0xFF}, nil))
	rsp, err := c.recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rsp.seq != 5 || codes.Code(rsp.meta.Code) != codes.InvalidArgument {
		t.Fatalf("answer: seq %d code %d %q, want seq 5 code 3", rsp.seq, rsp.meta.Code, rsp.meta.Message)
	}
	afterBadFrame(t, e, c)
}

func testR06BadBody(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := dialRaw(t, e.addr)
	good := request(t, 6, "myrpc.helloworld.Greeter", "Hello", 0, &helloworld.HelloRequest{})
	metaBytes := good[headerLen:]
	c.send(rawRequest(6, metaBytes, []byte{0x0A, 0x50, 'x'})) // field 1 claims 80 bytes, 1 follows
	rsp, err := c.recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rsp.seq != 6 || codes.Code(rsp.meta.Code) != codes.InvalidArgument {
		t.Fatalf("answer: seq %d code %d %q, want seq 6 code 3", rsp.seq, rsp.meta.Code, rsp.meta.Message)
	}
	afterBadFrame(t, e, c)
}

func testR07Unknown(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	for _, tc := range []struct{ method, names string }{
		{"/myrpc.helloworld.Greeter/Goodbye", "Goodbye"},
		{"/myrpc.nowhere.Nothing/Hello", "myrpc.nowhere.Nothing"},
	} {
		// The answer comes at once, not at the deadline; the bound leaves
		// room for a loaded machine that stalls a call for a while.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		err := c.Invoke(ctx, tc.method, &helloworld.HelloRequest{}, &helloworld.HelloReply{})
		cancel()
		se := wantCode(t, err, codes.Unimplemented)
		if !strings.Contains(se.Message(), tc.names) {
			t.Errorf("%s: message %q does not name %q", tc.method, se.Message(), tc.names)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: the answer took %v of a 5 s deadline", tc.method, d)
		}
	}
}

func testR08HandlerError(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := callFaults(ctx, c, "Fail", &echo.EchoRequest{})
	if se := wantCode(t, err, codes.NotFound); se.Message() != "no such widget" {
		t.Fatalf("message %q, want %q", se.Message(), "no such widget")
	}
	_, err = callFaults(ctx, c, "FailPlain", &echo.EchoRequest{})
	if se := wantCode(t, err, codes.Unknown); se.Message() != "a plain failure" {
		t.Fatalf("message %q, want %q", se.Message(), "a plain failure")
	}
}

func testR09Panic(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 3 {
		_, err := callFaults(ctx, c, "Panic", &echo.EchoRequest{})
		wantCode(t, err, codes.Internal)
		if _, err := callFaults(ctx, c, "Count", &echo.EchoRequest{}); err != nil {
			t.Fatalf("call after a panic: %v", err)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "rpctest: a deliberate panic") || !strings.Contains(logs, "goroutine ") {
		t.Fatalf("the panic and its stack were not logged:\n%s", logs)
	}
}

func testR10PastDeadline(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	// Through a client: the call ends at its deadline.
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := callFaults(ctx, c, "Block", &echo.EchoRequest{})
	wantCode(t, err, codes.DeadlineExceeded)
	select {
	case cerr := <-e.faults.blockEnded:
		// Its own deadline ends it, or the caller's: a client that closes
		// its connection at the deadline (V1, V2) cancels the calls on it.
		if cerr != context.DeadlineExceeded && cerr != context.Canceled {
			t.Fatalf("the handler's context ended with %v, want DeadlineExceeded or Canceled", cerr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context was not cancelled")
	}

	// On the wire: exactly one response, code 4, and not the late reply.
	rc := dialRaw(t, e.addr)
	rc.send(request(t, 10, faultsService, "Block", 150, &echo.EchoRequest{}))
	rsp, err := rc.recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rsp.seq != 10 || codes.Code(rsp.meta.Code) != codes.DeadlineExceeded || len(rsp.body) != 0 {
		t.Fatalf("answer: seq %d code %d body %q, want seq 10 code 4 and no body", rsp.seq, rsp.meta.Code, rsp.body)
	}
	<-e.faults.blockEnded
	if stage.LongConnections {
		if extra, err := rc.recv(300 * time.Millisecond); err == nil {
			t.Fatalf("a second response arrived: %+v", extra)
		}
	} else {
		rc.expectClosed(5 * time.Second)
	}
	// The handler goroutines have ended: checkLeaks verifies it.
}

func testR11CallerCancels(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := callFaults(ctx, c, "Block", &echo.EchoRequest{})
		done <- err
	}()
	// Cancel once the call has reached the handler.
	if !waitFor(5*time.Second, func() bool { return e.faults.blocked.Load() == 1 }) {
		t.Fatal("the call did not reach the handler")
	}
	cancel()
	cancelled := time.Now()
	select {
	case err := <-done:
		wantCode(t, err, codes.Canceled)
		if d := time.Since(cancelled); d > 2*time.Second {
			t.Fatalf("the call returned %v after its cancellation; its deadline was 10 s away", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled call did not return")
	}
	// The late reply, when the handler is released, goes nowhere, and the
	// client still works.
	e.faults.releaseAll()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	reply, err := callFaults(ctx2, c, "Count", &echo.EchoRequest{Payload: []byte("mine")})
	if err != nil || string(reply.Payload) != "mine" {
		t.Fatalf("call after a cancelled one: %v %v", reply, err)
	}
	if stage.Multiplexed {
		// The cancelled call left the pending table when it returned, and
		// its late reply was dropped, not delivered.
		if n := stage.Pending(c); n != 0 {
			t.Fatalf("%d calls still pending", n)
		}
		if !waitFor(5*time.Second, func() bool { return stage.Dropped(c) == 1 }) {
			t.Fatalf("%d responses dropped, want the cancelled call's late reply", stage.Dropped(c))
		}
	}
}

func testR12Slowloris(t *testing.T, stage Stage) {
	const frameTimeout = 400 * time.Millisecond
	e := start(t, stage, ServerConfig{FrameTimeout: frameTimeout, IdleTimeout: 30 * time.Second})
	c := dialRaw(t, e.addr)
	frame := request(t, 12, "myrpc.helloworld.Greeter", "Hello", 0, &helloworld.HelloRequest{Msg: "slow"})
	stopDrip := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stopDrip)
	first := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for _, b := range frame {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stopDrip:
				return
			}
		}
	}()
	c.expectClosed(10 * time.Second)
	// Closed near the frame timeout, measured from the first byte, and long
	// before the 30 s idle timeout.
	if d := time.Since(first); d < frameTimeout-50*time.Millisecond || d > frameTimeout+2*time.Second {
		t.Fatalf("closed %v after the first byte; the frame timeout is %v", d, frameTimeout)
	}
}

// testR14ResetMidResponse: a peer that sends half a response and then
// resets the connection fails every call in flight on it with code 14.
func testR14ResetMidResponse(t *testing.T, stage Stage) {
	const calls = 5
	fake := newResettingServer(t, calls)
	c := stage.NewClient(fake.addr, ClientConfig{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, calls)
	for range calls {
		go func() {
			_, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: "x"})
			errs <- err
		}()
	}
	for range calls {
		select {
		case err := <-errs:
			wantCode(t, err, codes.Unavailable)
		case <-time.After(5 * time.Second):
			t.Fatal("a call on a reset connection did not return")
		}
	}
	fake.close()
}

func testR15Shutdown(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A request that is half sent when the shutdown starts, and finished
	// after: it must be answered 14, not run.
	late := dialRaw(t, e.addr)
	lateFrame := request(t, 15, faultsService, "Count", 0, &echo.EchoRequest{})
	late.send(lateFrame[:headerLen+2])

	const n = 100
	results := make(chan error, n)
	for range n {
		go func() {
			_, err := callFaults(ctx, c, "Slow", &echo.EchoRequest{DelayMs: 300})
			results <- err
		}()
	}
	if !waitFor(5*time.Second, func() bool { return e.faults.started.Load() > 0 }) {
		t.Fatal("no call started")
	}
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- e.shutdown(2 * time.Second) }()
	// The listener closes at once.
	if !waitFor(2*time.Second, func() bool { return !canDial(e.addr) }) {
		t.Fatal("the server still accepts connections during Shutdown")
	}
	late.send(lateFrame[headerLen+2:])
	rsp, err := late.recv(5 * time.Second)
	if err != nil {
		t.Fatalf("a request finished during Shutdown got no answer: %v", err)
	}
	if codes.Code(rsp.meta.Code) != codes.Unavailable {
		t.Fatalf("a request finished during Shutdown: code %d %q, want 14", rsp.meta.Code, rsp.meta.Message)
	}
	late.expectClosed(5 * time.Second)
	if n := e.faults.calls.Load(); n != 0 {
		t.Fatal("a request answered 14 was run")
	}

	ok, failed := 0, 0
	why := map[string]int{} // the failures' messages, to say what happened
	for range n {
		select {
		case err := <-results:
			if err == nil {
				ok++
			} else {
				failed++
				why[err.Error()]++
				if code := status.Code(err); code != codes.Unavailable {
					t.Errorf("a call during Shutdown failed with %v; want success or Unavailable", err)
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a call hung through Shutdown")
		}
	}
	if err := <-shutdownDone; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if started := e.faults.started.Load(); int64(ok) < started {
		t.Fatalf("%d calls were running when Shutdown started but only %d completed; the others failed with %v", started, ok, why)
	}
	t.Logf("%d calls completed, %d were refused with 14", ok, failed)
}

func testR23HalfClose(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := dialRaw(t, e.addr)
	c.send(request(t, 23, "myrpc.helloworld.Greeter", "Hello", 0, &helloworld.HelloRequest{Msg: "half"}))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rsp, err := c.recv(5 * time.Second)
	if err != nil {
		t.Fatalf("no answer after a half-close: %v", err)
	}
	if rsp.seq != 23 || rsp.meta.Code != 0 {
		t.Fatalf("answer: seq %d code %d %q", rsp.seq, rsp.meta.Code, rsp.meta.Message)
	}
	var reply helloworld.HelloReply
	if err := protoUnmarshal(rsp.body, &reply); err != nil || reply.Msg != "Hello half" {
		t.Fatalf("reply %q, %v", reply.Msg, err)
	}
	c.expectClosed(5 * time.Second)
}

func testR26ManyGoroutines(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const callers, calls = 64, 15
	var wg sync.WaitGroup
	errs := make(chan error, callers*calls)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				switch (g + i) % 3 {
				case 0:
					msg := fmt.Sprintf("%d/%d", g, i)
					r, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: msg})
					if err != nil || r.Msg != "Hello "+msg {
						errs <- fmt.Errorf("Hello(%s) = %v, %v", msg, r, err)
					}
				case 1:
					if _, err := callFaults(ctx, c, "Count", &echo.EchoRequest{}); err != nil {
						errs <- err
					}
				case 2:
					err := c.Invoke(ctx, "/myrpc.helloworld.Greeter/Nope", &helloworld.HelloRequest{}, &helloworld.HelloReply{})
					if status.Code(err) != codes.Unimplemented {
						errs <- fmt.Errorf("unknown method: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
