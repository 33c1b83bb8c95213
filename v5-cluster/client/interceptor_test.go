package client

import (
	"context"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/server"
)

// echoMetadata is a server interceptor that sends the request's metadata
// back as the response's. It answers Hello("fail") with NotFound.
func echoMetadata(ctx context.Context, req proto.Message, info *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (proto.Message, error) {
	if err := rpc.SetTrailer(ctx, rpc.IncomingMetadata(ctx)); err != nil {
		return nil, err
	}
	if r, ok := req.(*helloworld.HelloRequest); ok && r.Msg == "fail" {
		return nil, status.New(codes.NotFound, "no greeting")
	}
	return handler(ctx, req)
}

// clientTracer records what the client interceptors of a test saw.
type clientTracer struct {
	mu    sync.Mutex
	trace []string
	ccs   []rpc.Invoker
	opts  [][]rpc.CallOption
}

func (tr *clientTracer) interceptor(name string) rpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply proto.Message, cc rpc.Invoker, invoker rpc.UnaryInvoker, opts ...rpc.CallOption) error {
		tr.mu.Lock()
		tr.trace = append(tr.trace, name+" "+method)
		tr.ccs = append(tr.ccs, cc)
		tr.opts = append(tr.opts, opts)
		tr.mu.Unlock()
		// Each adds its name to the request's metadata.
		md := maps.Clone(rpc.OutgoingMetadata(ctx))
		if md == nil {
			md = rpc.Metadata{}
		}
		md[name] = "seen"
		err := invoker(rpc.WithOutgoingMetadata(ctx, md), method, req, reply, opts...)
		tr.mu.Lock()
		tr.trace = append(tr.trace, "/"+name)
		tr.mu.Unlock()
		return err
	}
}

// TestClientInterceptors: the interceptors run around Invoke, the first
// given outermost, with the method, the client as cc and the call's
// options; what they change goes out with the call.
func TestClientInterceptors(t *testing.T) {
	ts := startServer(t, server.WithInterceptors(echoMetadata))
	tr := &clientTracer{}
	c := newTestClient(t, ts.addr, WithInterceptors(tr.interceptor("a"), tr.interceptor("b")), WithInterceptors(tr.interceptor("c")))
	var md rpc.Metadata
	reply, err := hello(context.Background(), c, "world", rpc.Trailer(&md))
	if err != nil || reply.Msg != "Hello world" {
		t.Fatalf("Hello = %v, %v", reply, err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	m := helloworld.Greeter_Hello_FullMethodName
	if want := []string{"a " + m, "b " + m, "c " + m, "/c", "/b", "/a"}; !slices.Equal(tr.trace, want) {
		t.Errorf("order = %v, want %v", tr.trace, want)
	}
	for i := range tr.ccs {
		if tr.ccs[i] != c || len(tr.opts[i]) != 1 {
			t.Errorf("interceptor %d got cc %v and options %v, want the client and the call's one option", i, tr.ccs[i], tr.opts[i])
		}
	}
	if want := (rpc.Metadata{"a": "seen", "b": "seen", "c": "seen"}); !maps.Equal(md, want) {
		t.Errorf("the server saw metadata %v, want %v", md, want)
	}
}

// TestClientInterceptorAnswers: an interceptor that answers the call
// itself sends nothing.
func TestClientInterceptorAnswers(t *testing.T) {
	ts := startServer(t)
	refuse := func(context.Context, string, proto.Message, proto.Message, rpc.Invoker, rpc.UnaryInvoker, ...rpc.CallOption) error {
		return status.New(codes.Unavailable, "circuit open")
	}
	c := newTestClient(t, ts.addr, WithInterceptors(refuse))
	_, err := hello(context.Background(), c, "world")
	wantCode(t, err, codes.Unavailable)
	f := c.InvokeAsync(context.Background(), helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{}, new(helloworld.HelloReply))
	wantCode(t, f.Get(context.Background()), codes.Unavailable)
	if n := ts.lis.accepted.Load(); n != 0 {
		t.Errorf("the client opened %d connections, want none", n)
	}
}

// TestClientInterceptorsAsync: InvokeAsync runs the interceptors too, and
// its future ends when the outermost returns, with its error.
func TestClientInterceptorsAsync(t *testing.T) {
	ts := startServer(t, server.WithInterceptors(echoMetadata))
	tr := &clientTracer{}
	release := make(chan struct{})
	entered := make(chan struct{})
	hold := func(ctx context.Context, method string, req, reply proto.Message, cc rpc.Invoker, invoker rpc.UnaryInvoker, opts ...rpc.CallOption) error {
		close(entered)
		err := invoker(ctx, method, req, reply, opts...)
		<-release
		return err
	}
	c := newTestClient(t, ts.addr, WithInterceptors(hold, tr.interceptor("a")))
	var md rpc.Metadata
	f := helloworld.NewGreeterAsyncClient(c).HelloAsync(context.Background(), &helloworld.HelloRequest{Msg: "async"}, rpc.Trailer(&md))
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("the asynchronous call did not run the interceptors")
	}
	select {
	case <-f.Done():
		t.Fatal("the future ended before the outermost interceptor returned")
	default:
	}
	close(release)
	reply, err := f.Get(context.Background())
	if err != nil || reply.Msg != "Hello async" {
		t.Fatalf("HelloAsync = %v, %v", reply, err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if want := []string{"a " + helloworld.Greeter_Hello_FullMethodName, "/a"}; !slices.Equal(tr.trace, want) {
		t.Errorf("order = %v, want %v", tr.trace, want)
	}
	if want := (rpc.Metadata{"a": "seen"}); !maps.Equal(md, want) {
		t.Errorf("trailer %v, want %v", md, want)
	}
}

// TestClientInterceptorsAsyncAfterClose: an asynchronous call made after
// Close fails at once, without running the interceptors.
func TestClientInterceptorsAsyncAfterClose(t *testing.T) {
	ran := false
	c := New("127.0.0.1:1", WithLogger(quietLogger()), WithInterceptors(func(ctx context.Context, method string, req, reply proto.Message, cc rpc.Invoker, invoker rpc.UnaryInvoker, opts ...rpc.CallOption) error {
		ran = true
		return invoker(ctx, method, req, reply, opts...)
	}))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	f := c.InvokeAsync(context.Background(), helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{}, new(helloworld.HelloReply))
	wantCode(t, f.Get(context.Background()), codes.Canceled)
	if ran {
		t.Error("the interceptor ran for a call after Close")
	}
}

// TestTrailerOption: rpc.Trailer receives the metadata of the call's
// response, on success and on error, synchronous or not; a response
// without metadata leaves nil.
func TestTrailerOption(t *testing.T) {
	ts := startServer(t, server.WithInterceptors(echoMetadata))
	c := newTestClient(t, ts.addr)
	ctx := rpc.WithOutgoingMetadata(context.Background(), rpc.Metadata{"k": "v"})
	want := rpc.Metadata{"k": "v"}

	var md rpc.Metadata
	if _, err := hello(ctx, c, "world", rpc.Trailer(&md)); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(md, want) {
		t.Errorf("Invoke: trailer %v, want %v", md, want)
	}

	md = nil
	_, err := hello(ctx, c, "fail", rpc.Trailer(&md))
	wantCode(t, err, codes.NotFound)
	if !maps.Equal(md, want) {
		t.Errorf("failed call: trailer %v, want %v", md, want)
	}

	md = nil
	f := c.InvokeAsync(ctx, helloworld.Greeter_Hello_FullMethodName, &helloworld.HelloRequest{}, new(helloworld.HelloReply), rpc.Trailer(&md))
	if err := f.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(md, want) {
		t.Errorf("InvokeAsync: trailer %v, want %v", md, want)
	}

	md = rpc.Metadata{"left": "over"}
	if _, err := hello(context.Background(), c, "world", rpc.Trailer(&md)); err != nil {
		t.Fatal(err)
	}
	if md != nil {
		t.Errorf("a response without metadata: trailer %v, want nil", md)
	}
}

// TestTrailerHidesMark: the connection: close mark is not the caller's
// metadata.
func TestTrailerHidesMark(t *testing.T) {
	f := newFakeServer(t, func(w io.Writer, r received) bool {
		md := map[string]string{rpc.ConnectionKey: rpc.ConnectionClose}
		var req helloworld.HelloRequest
		if err := proto.Unmarshal(r.body, &req); err == nil && req.Msg == "with" {
			md["k"] = "v"
		}
		w.Write(respFrame(r.seq, &meta.ResponseMeta{Metadata: md}, &helloworld.HelloReply{Msg: "marked"}))
		return false
	})
	c := newTestClient(t, f.addr)
	for _, tt := range []struct {
		msg  string
		want rpc.Metadata
	}{
		{"with", rpc.Metadata{"k": "v"}},
		{"without", nil},
	} {
		md := rpc.Metadata{"left": "over"}
		if _, err := hello(context.Background(), c, tt.msg, rpc.Trailer(&md)); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(md, tt.want) || (md == nil) != (tt.want == nil) {
			t.Errorf("%s: trailer %#v, want %#v", tt.msg, md, tt.want)
		}
	}
}

// TestTrailerOfLastAttempt: after a retry, the trailer is the last
// attempt's: none, when its connection broke before a response came.
func TestTrailerOfLastAttempt(t *testing.T) {
	var mu sync.Mutex
	n := 0
	f := newFakeServer(t, func(w io.Writer, r received) bool {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if !first {
			return false // closed without an answer
		}
		w.Write(respFrame(r.seq, &meta.ResponseMeta{Code: uint32(codes.Unavailable), Message: "not now",
			Metadata: map[string]string{"attempt": "1"}}, nil))
		return true
	})
	c := newTestClient(t, f.addr, WithRetry(RetryPolicy{Attempts: 2, Base: time.Millisecond}))
	md := rpc.Metadata{"left": "over"}
	_, err := hello(context.Background(), c, "world", rpc.Trailer(&md))
	wantCode(t, err, codes.Unavailable)
	if n := len(f.reqs); n != 2 {
		t.Fatalf("the server received %d requests, want 2 attempts", n)
	}
	if md != nil {
		t.Errorf("trailer %v, want the second attempt's, none", md)
	}
}
