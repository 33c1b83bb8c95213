package server

import (
	"context"
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
	"myrpc/shared/proto/services"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/codec"
)

// tracer records what the interceptors of a test saw.
type tracer struct {
	mu    sync.Mutex
	trace []string
	infos []rpc.UnaryServerInfo
	reqs  []proto.Message
	errs  []error
}

// interceptor returns an interceptor that records name on the way in and
// "/"+name on the way out, with the info, request and error it saw.
func (tr *tracer) interceptor(name string) rpc.UnaryServerInterceptor {
	return func(ctx context.Context, req proto.Message, info *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (proto.Message, error) {
		tr.mu.Lock()
		tr.trace = append(tr.trace, name)
		tr.infos = append(tr.infos, *info)
		tr.reqs = append(tr.reqs, req)
		tr.mu.Unlock()
		reply, err := handler(ctx, req)
		tr.mu.Lock()
		tr.trace = append(tr.trace, "/"+name)
		tr.errs = append(tr.errs, err)
		tr.mu.Unlock()
		return reply, err
	}
}

// TestInterceptors: the interceptors run around the method, the first
// given outermost, each with the method's info and the decoded request.
func TestInterceptors(t *testing.T) {
	tr := &tracer{}
	ts := startServer(t, WithInterceptors(tr.interceptor("a"), tr.interceptor("b")), WithInterceptors(tr.interceptor("c")))
	got, err := hello(ctxTimeout(t, 5*time.Second), ts.addr, "world")
	if err != nil || got != "Hello world" {
		t.Fatalf("Hello = %q, %v", got, err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if want := []string{"a", "b", "c", "/c", "/b", "/a"}; !slices.Equal(tr.trace, want) {
		t.Errorf("order = %v, want %v", tr.trace, want)
	}
	for i, info := range tr.infos {
		if info.FullMethod != helloworld.Greeter_Hello_FullMethodName || info.Server != (services.Greeter{}) {
			t.Errorf("interceptor %d got info %+v", i, info)
		}
		if req, ok := tr.reqs[i].(*helloworld.HelloRequest); !ok || req.GetMsg() != "world" {
			t.Errorf("interceptor %d got request %v, want the decoded HelloRequest", i, tr.reqs[i])
		}
	}
}

// TestInterceptorAnswers: an interceptor may answer a call itself, and the
// caller gets its error; the other methods go through.
func TestInterceptorAnswers(t *testing.T) {
	deny := func(ctx context.Context, req proto.Message, info *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (proto.Message, error) {
		if req.(*helloworld.HelloRequest).GetMsg() == "intruder" {
			return nil, status.New(codes.NotFound, "no greeting for intruders")
		}
		return handler(ctx, req)
	}
	ts := startServer(t, WithInterceptors(deny))
	ctx := ctxTimeout(t, 5*time.Second)
	if _, err := hello(ctx, ts.addr, "intruder"); status.Code(err) != codes.NotFound {
		t.Errorf("denied call: %v, want NotFound", err)
	}
	if got, err := hello(ctx, ts.addr, "friend"); err != nil || got != "Hello friend" {
		t.Errorf("allowed call: %q, %v", got, err)
	}
}

// panicGreeter is a Greeter whose Hello panics.
type panicGreeter struct {
	helloworld.UnimplementedGreeterServer
}

func (panicGreeter) Hello(context.Context, *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	panic("a deliberate panic")
}

// TestInterceptorSeesPanic: a method's panic reaches the interceptors as
// the code 13 error its caller gets, logged once, and the server goes on.
func TestInterceptorSeesPanic(t *testing.T) {
	tr := &tracer{}
	log, logs := newLogger()
	s := New(WithLogger(log), WithInterceptors(tr.interceptor("a")))
	if err := s.Register(&helloworld.Greeter_ServiceDesc, panicGreeter{}); err != nil {
		t.Fatal(err)
	}
	ts := serveOn(t, s)
	if _, err := hello(ctxTimeout(t, 5*time.Second), ts.addr, "boom"); status.Code(err) != codes.Internal {
		t.Fatalf("Hello: %v, want Internal", err)
	}
	tr.mu.Lock()
	if len(tr.errs) != 1 || status.Code(tr.errs[0]) != codes.Internal {
		t.Errorf("the interceptor saw %v, want one code 13 error", tr.errs)
	}
	tr.mu.Unlock()
	if n := logs.count(t, "ERROR", "rpc: handler panicked"); n != 1 {
		t.Errorf("the panic was logged %d times, want once", n)
	}
}

// trailerGreeter is a Greeter that sets response metadata: Hello("fail")
// fails with NotFound, Hello("late") waits for its context to end.
type trailerGreeter struct {
	helloworld.UnimplementedGreeterServer
}

func (trailerGreeter) Hello(ctx context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	if err := rpc.SetTrailer(ctx, rpc.Metadata{"handler": req.GetMsg()}); err != nil {
		return nil, err
	}
	switch req.GetMsg() {
	case "fail":
		return nil, status.New(codes.NotFound, "no such greeting")
	case "late":
		<-ctx.Done()
		return &helloworld.HelloReply{Msg: "too late"}, nil
	}
	return &helloworld.HelloReply{Msg: "Hello " + req.GetMsg()}, nil
}

// helloFrameTimeout encodes a Hello request with a timeout.
func helloFrameTimeout(t *testing.T, seq uint32, msg string, timeout time.Duration) []byte {
	t.Helper()
	b, err := codec.AppendFrame(nil, codec.TypeRequest, seq,
		&meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello", TimeoutMs: codec.TimeoutMs(timeout)},
		&helloworld.HelloRequest{Msg: msg}, codec.DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrailer: what a handler and the interceptors set with SetTrailer
// comes in the response's metadata, on success and on error, without the
// connection: close mark; the connection goes on serving, as a client of
// an earlier stage, which reads no metadata but that mark, expects. A
// response that replaces the handler's (its deadline passed) carries none.
func TestTrailer(t *testing.T) {
	stamp := func(ctx context.Context, req proto.Message, info *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (proto.Message, error) {
		reply, err := handler(ctx, req)
		if terr := rpc.SetTrailer(ctx, rpc.Metadata{"interceptor": status.Code(err).String()}); terr != nil {
			t.Errorf("SetTrailer in the interceptor: %v", terr)
		}
		return reply, err
	}
	s := New(WithLogger(quietLogger()), WithInterceptors(stamp))
	if err := s.Register(&helloworld.Greeter_ServiceDesc, trailerGreeter{}); err != nil {
		t.Fatal(err)
	}
	ts := serveOn(t, s)
	nc := dial(t, ts.addr)

	tests := []struct {
		msg      string
		timeout  time.Duration
		wantCode codes.Code
		wantMD   map[string]string
	}{
		{msg: "world", wantMD: map[string]string{"handler": "world", "interceptor": codes.OK.String()}},
		{msg: "fail", wantCode: codes.NotFound, wantMD: map[string]string{"handler": "fail", "interceptor": codes.NotFound.String()}},
		{msg: "late", timeout: 50 * time.Millisecond, wantCode: codes.DeadlineExceeded},
		{msg: "again", wantMD: map[string]string{"handler": "again", "interceptor": codes.OK.String()}},
	}
	for i, tt := range tests {
		seq := uint32(i + 1)
		write(t, nc, helloFrameTimeout(t, seq, tt.msg, tt.timeout))
		f, rm := readResponse(t, nc, 5*time.Second)
		if f.Seq != seq || codes.Code(rm.Code) != tt.wantCode {
			t.Fatalf("%s: response %d, code %d %q; want %d, code %v", tt.msg, f.Seq, rm.Code, rm.Message, seq, tt.wantCode)
		}
		if !maps.Equal(rm.Metadata, tt.wantMD) {
			t.Errorf("%s: metadata %v, want %v", tt.msg, rm.Metadata, tt.wantMD)
		}
		if rpc.Closing(rm.Metadata) {
			t.Errorf("%s: the response is marked connection: close", tt.msg)
		}
	}
}

// TestTrailerWithoutInterceptors: a server without interceptors sends
// the handler's metadata too.
func TestTrailerWithoutInterceptors(t *testing.T) {
	s := New(WithLogger(quietLogger()))
	if err := s.Register(&helloworld.Greeter_ServiceDesc, trailerGreeter{}); err != nil {
		t.Fatal(err)
	}
	ts := serveOn(t, s)
	nc := dial(t, ts.addr)
	write(t, nc, helloFrame(t, 1, "world"))
	f, rm := readResponse(t, nc, 5*time.Second)
	var reply helloworld.HelloReply
	wantReply(t, f, rm, &reply)
	if want := map[string]string{"handler": "world"}; !maps.Equal(rm.Metadata, want) {
		t.Errorf("metadata %v, want %v", rm.Metadata, want)
	}
}

// TestTrailerTooBig: metadata that pushes the response meta over its
// limit turns the response into a code 8, without the metadata, and the
// connection goes on.
func TestTrailerTooBig(t *testing.T) {
	big := func(ctx context.Context, req proto.Message, info *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (proto.Message, error) {
		if req.(*helloworld.HelloRequest).GetMsg() == "big" {
			if err := rpc.SetTrailer(ctx, rpc.Metadata{"big": string(make([]byte, codec.MaxMetaLen))}); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
	ts := startServer(t, WithInterceptors(big))
	nc := dial(t, ts.addr)
	write(t, nc, helloFrame(t, 1, "big"))
	_, rm := readResponse(t, nc, 5*time.Second)
	if codes.Code(rm.Code) != codes.ResourceExhausted || len(rm.Metadata) != 0 {
		t.Errorf("code %d %q, metadata of %d keys; want code 8 and none", rm.Code, rm.Message, len(rm.Metadata))
	}
	write(t, nc, helloFrame(t, 2, "small"))
	f, rm := readResponse(t, nc, 5*time.Second)
	var reply helloworld.HelloReply
	wantReply(t, f, rm, &reply)
}
