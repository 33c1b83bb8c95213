package rpctest

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
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
		{27, "client_never_reads", "a client pipelines requests and never reads the replies", needsLongConnections, testR27NeverReads},
		{28, "connection_closes_while_handlers_run", "calls abandoned: their connection closes while handlers run", always, testR28Abandoned},
		{29, "headers_promising_large_frames", "headers promising large frames, then silence or close", always, testR29PromisedFrames},
		{30, "peer_stops_reading_while_calls_queue", "the peer stops reading while calls are queued to write", always, testR30PeerStopsReading},
		{31, "all_connections_retired_while_calls_drain", "every connection of a multiplexing client retired (server shutdown) while slow calls drain", needsMux, testR31AllRetired},
		{32, "name_too_long_to_echo", "a name so long that echoing it overflows the reply's meta", always, testR32LongName},
		{33, "registry_down", "registry down: calls go on with the servers the client knows", needsCluster, testR33RegistryDown},
		{34, "lease_expiry", "a server's lease ends: its address leaves the registry and the client stops calling it", needsCluster, testR34LeaseExpiry},
		{35, "server_crash", "a server crashes: calls it had may fail, calls never sent go to the others", needsCluster, testR35ServerCrash},
		{36, "server_drain", "a server drains (SIGTERM): no call fails", needsCluster, testR36ServerDrain},
		{37, "registry_member_lost", "a three-member registry loses a member: no call fails", needsCluster, testR37MemberLost},
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
			switch {
			case isChild():
			case stage.Cluster != nil && r.num >= 33:
				checkClusterLeaks(t, stage.Cluster.LeakWait)
			default:
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

// testR30PeerStopsReading: a server that accepts connections and never
// reads them, and 64 callers: first 32 with 1 MiB requests and a 5 s
// deadline, whose writes fill the sockets and stay stuck, then 32 with
// 256 KiB and 500 ms, which queue behind them, and, for a client with
// InvokeAsync, a few asynchronous calls of 256 KiB with the long calls'
// context. Every call must end by the end of its context, however long
// the writes ahead of it would block, and InvokeAsync must return its
// future at once. The long and asynchronous calls are cancelled once the
// short ones are over and every InvokeAsync has returned (or hold has
// passed): their contexts end then, and the row need not wait 5 s. So an
// InvokeAsync that waited for a write could not return before hold, far
// beyond any bound on noise, and the row tells it from a slow machine.
func testR30PeerStopsReading(t *testing.T, stage Stage) {
	const (
		callers    = 64
		asyncCalls = 4
		payload    = 256 << 10
		short      = 500 * time.Millisecond
		long       = 5 * time.Second
		// slack is how late a call may end after its context, and how
		// long InvokeAsync may take to return, on a machine that runs the
		// test without holding it up. A busy machine, and the race
		// detector, stall the whole process now and then: the bound adds
		// twice the worst stall the process saw (a stallMeter: how late a
		// timer fired, or how long a goroutine waited for its turn, since
		// a woken caller can queue behind the others as well), and never
		// exceeds ceiling. A call stuck behind another call's write
		// overruns by seconds.
		slack   = 50 * time.Millisecond
		ceiling = 2 * time.Second
		// giveUp is how long the test waits for calls after their
		// contexts end before it calls them hung.
		giveUp = 5 * time.Second
		// hold is how long the long calls' context is kept for an
		// InvokeAsync that has not returned: past ceiling.
		hold = ceiling + time.Second
		// asyncBound is how long InvokeAsync may take to return. One
		// that waits for a stuck write cannot return before hold, so the
		// bound can leave room for what no meter here sees (a goroutine
		// made to help the garbage collector, say) and still tell the two
		// apart by seconds.
		asyncBound = ceiling / 2
	)
	meter := startStallMeter()
	defer meter.Stop()
	deaf := newDeafServer(t)
	c := stage.NewClient(deaf.addr, ClientConfig{})
	defer c.Close()
	ai, hasAsync := c.(rpc.AsyncInvoker)
	const method = "/myrpc.echo.Echo/Echo"
	body := make([]byte, payload)
	// The long calls carry more, so that a client with a few connections
	// certainly fills their sockets (a few MiB each) and its writes stay
	// stuck.
	longBody := make([]byte, 4*payload)

	// Calls 0 to callers/2-1 are long, the rest of the first callers
	// short; after them come the asynchronous calls, 256 KiB under the
	// long calls' context.
	n := callers
	if hasAsync {
		n += asyncCalls
	}
	isLong := func(i int) bool { return i < callers/2 }
	isAsync := func(i int) bool { return i >= callers }
	// onLongCtx reports whether call i runs under the long calls' context.
	onLongCtx := func(i int) bool { return isLong(i) || isAsync(i) }
	// asyncBack has a value for each InvokeAsync that has returned.
	asyncBack := make(chan struct{}, asyncCalls)
	type result struct {
		i   int
		end time.Time
		// returned is how long InvokeAsync took to return.
		returned time.Duration
		err      error
	}
	results := make(chan result, n)
	deadlines := make([]time.Time, n)
	longCtx, cancelLong := context.WithCancel(context.Background())
	defer cancelLong()
	launch := func(i int) {
		// The short calls' deadlines are spread over a few
		// milliseconds, so that they do not all end at the same instant.
		parent, d, req := context.Background(), short+time.Duration(i%16)*2*time.Millisecond, &echo.EchoRequest{Payload: body}
		if isLong(i) {
			parent, d, req = longCtx, long, &echo.EchoRequest{Payload: longBody}
		} else if isAsync(i) {
			parent, d = longCtx, long
		}
		deadlines[i] = time.Now().Add(d)
		ctx, cancel := context.WithDeadline(parent, deadlines[i])
		if !isAsync(i) {
			go func() {
				defer cancel()
				err := c.Invoke(ctx, method, req, new(echo.EchoReply))
				results <- result{i: i, end: time.Now(), err: err}
			}()
			return
		}
		go func() {
			start := time.Now()
			f := ai.InvokeAsync(ctx, method, req, new(echo.EchoReply))
			returned := time.Since(start)
			asyncBack <- struct{}{}
			f.OnDone(func(err error) {
				cancel()
				results <- result{i: i, end: time.Now(), returned: returned, err: err}
			})
		}()
	}
	for i := range callers / 2 {
		launch(i)
	}
	if !waitFor(5*time.Second, func() bool { return deaf.accepted() > 0 }) {
		t.Fatal("the client did not connect")
	}
	for i := callers / 2; i < n; i++ {
		launch(i)
	}

	// ends[i] is when call i ended, zero while it has not; cancelled is
	// when the long calls' contexts were cancelled.
	ends := make([]time.Time, n)
	returned := make([]time.Duration, n)
	var cancelled time.Time
	ctxEnd := func(i int) time.Time {
		if onLongCtx(i) && !cancelled.IsZero() && cancelled.Before(deadlines[i]) {
			return cancelled
		}
		return deadlines[i]
	}
	ended := func(long bool) func() bool {
		return func() bool {
			for i, end := range ends {
				if onLongCtx(i) == long && end.IsZero() {
					return false
				}
			}
			return true
		}
	}
	// collect takes results until done says so or until is reached.
	collect := func(until time.Time, done func() bool) {
		timer := time.NewTimer(time.Until(until))
		defer timer.Stop()
		for !done() {
			select {
			case r := <-results:
				ends[r.i], returned[r.i] = r.end, r.returned
				if r.err == nil {
					t.Errorf("call %d succeeded against a server that reads nothing", r.i)
				}
			case <-timer.C:
				return
			}
		}
	}
	collect(time.Now().Add(short+giveUp), ended(false))
	if hasAsync {
		held := time.NewTimer(hold)
	wait:
		for range asyncCalls {
			select {
			case <-asyncBack:
			case <-held.C:
				break wait
			}
		}
		held.Stop()
	}
	cancelLong()
	cancelled = time.Now()
	collect(cancelled.Add(giveUp), ended(true))
	if !ended(false)() || !ended(true)() {
		// Break the connections, so that the calls end before the test
		// does.
		deaf.close()
		collect(time.Now().Add(giveUp), func() bool { return ended(false)() && ended(true)() })
	}

	meter.Stop()
	// A call's caller is woken when its context ends, and may wait its
	// turn behind the goroutines ready before it, as a goroutine
	// preempted inside InvokeAsync does.
	queued := meter.Queued()
	bound := min(slack+2*queued, ceiling)
	t.Logf("the process held a goroutine up for at most %v: a call may end %v late", queued.Round(time.Millisecond), bound.Round(time.Millisecond))
	var overruns []time.Duration
	var worstAsync time.Duration
	worst, worstOverrun := -1, time.Duration(0)
	for i, end := range ends {
		if end.IsZero() {
			t.Errorf("call %d never returned", i)
			continue
		}
		o := end.Sub(ctxEnd(i))
		overruns = append(overruns, o)
		if worst < 0 || o > worstOverrun {
			worst, worstOverrun = i, o
		}
		if isAsync(i) {
			worstAsync = max(worstAsync, returned[i])
		}
	}
	if hasAsync {
		t.Logf("InvokeAsync returned within %v; a goroutine waited at most %v for its turn", worstAsync.Round(time.Microsecond), queued.Round(time.Millisecond))
		if worstAsync > asyncBound {
			t.Errorf("InvokeAsync took %v to return while the connection's writes were stuck; want under %v",
				worstAsync.Round(time.Millisecond), asyncBound.Round(time.Millisecond))
		}
	}
	if len(overruns) == 0 {
		return
	}
	slices.Sort(overruns)
	q := func(p float64) time.Duration {
		return overruns[int(p*float64(len(overruns)-1))].Round(time.Millisecond)
	}
	kind := "a 500 ms deadline"
	switch {
	case isLong(worst):
		kind = "a 5 s deadline, cancelled after the short calls"
	case isAsync(worst):
		kind = "asynchronous, a 5 s deadline, cancelled after the short calls"
	}
	t.Logf("the calls ended after their contexts by: median %v, p90 %v, max %v (call %d, %s)", q(0.5), q(0.9), q(1), worst, kind)
	if worstOverrun > bound {
		t.Errorf("call %d (%s) ended %v after its context; want within %v", worst, kind, worstOverrun.Round(time.Millisecond), bound)
	}
}

// testR32LongName: a request for a method, or a service, whose name is so
// long that echoing it in the error pushes the response meta over its
// 64 KiB limit. The echo must be shortened: the caller gets code 12, with
// nothing logged as a warning, and V1's reply still says that the
// connection closes.
func testR32LongName(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	const prefix = "NoSuchName"
	for _, tc := range []struct{ what, service, method string }{
		{"method", "myrpc.helloworld.Greeter", ""},
		{"service", "", "Hello"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			// The name fills the request meta to its limit exactly: the
			// longest name a request can carry.
			frame := longNameRequest(t, tc.service, tc.method, prefix)
			if n := binary.BigEndian.Uint32(frame[8:]); n != 64<<10 {
				t.Fatalf("the request meta is %d bytes; the test wants it at the 64 KiB limit", n)
			}
			c := dialRaw(t, e.addr)
			c.send(frame)
			rsp, err := c.recv(5 * time.Second)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if rsp.seq != 32 {
				t.Fatalf("answer: seq %d, want 32", rsp.seq)
			}
			if codes.Code(rsp.meta.Code) != codes.Unimplemented {
				t.Errorf("answer: code %d %.200q; want code 12", rsp.meta.Code, rsp.meta.Message)
			} else if !strings.Contains(rsp.meta.Message, prefix) {
				t.Errorf("message %.200q does not name the %s", rsp.meta.Message, tc.what)
			}
			if !stage.LongConnections && !rpc.Closing(rsp.meta.Metadata) {
				t.Errorf("the reply's metadata %v lacks %s: %s", rsp.meta.Metadata, rpc.ConnectionKey, rpc.ConnectionClose)
			}
			afterBadFrame(t, e, c)
		})
	}
	if logs := e.logs.String(); logs != "" {
		t.Fatalf("the server logged warnings or errors:\n%.2000s", logs)
	}
}

// longNameRequest encodes a request whose empty service or method name is
// replaced by prefix and filler, so long that the request meta is exactly
// at its 64 KiB limit.
func longNameRequest(t *testing.T, service, method, prefix string) []byte {
	t.Helper()
	size := 64 << 10
	for n := size; ; n-- {
		name := prefix + strings.Repeat("x", n-len(prefix))
		s, m := service, method
		if s == "" {
			s = name
		} else {
			m = name
		}
		frame := request(t, 32, s, m, 0, &helloworld.HelloRequest{Msg: "x"})
		if int(binary.BigEndian.Uint32(frame[8:])) <= size {
			return frame
		}
	}
}
