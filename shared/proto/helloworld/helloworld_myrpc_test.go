package helloworld_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
)

type ctxKey struct{}

// option is a call option the stub must pass through untouched.
type option struct{ name string }

func (option) IsCallOption() {}

// fakeInvoker records the call a client stub makes and answers it with
// reply or err.
type fakeInvoker struct {
	calls int
	ctx   context.Context
	// method, req, replyArg and opts are the arguments of the last call.
	method   string
	req      proto.Message
	replyArg proto.Message
	opts     []rpc.CallOption

	reply proto.Message
	err   error
}

func (f *fakeInvoker) Invoke(ctx context.Context, method string, req, reply proto.Message, opts ...rpc.CallOption) error {
	f.calls++
	f.ctx, f.method, f.req, f.replyArg, f.opts = ctx, method, req, reply, opts
	if f.err != nil {
		return f.err
	}
	proto.Merge(reply, f.reply)
	return nil
}

func TestGreeterClient(t *testing.T) {
	errBroken := status.New(codes.Unavailable, "connection broken")
	tests := []struct {
		name      string
		opts      []rpc.CallOption
		reply     *helloworld.HelloReply
		err       error
		wantReply string
	}{
		{name: "reply", reply: &helloworld.HelloReply{Msg: "Hello world"}, wantReply: "Hello world"},
		{name: "empty reply", reply: &helloworld.HelloReply{}},
		{
			name:      "options",
			opts:      []rpc.CallOption{option{"a"}, option{"b"}},
			reply:     &helloworld.HelloReply{Msg: "Hello world"},
			wantReply: "Hello world",
		},
		{name: "error", opts: []rpc.CallOption{option{"a"}}, err: errBroken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := &fakeInvoker{reply: tt.reply, err: tt.err}
			ctx := context.WithValue(context.Background(), ctxKey{}, tt.name)
			req := &helloworld.HelloRequest{Msg: "world"}

			got, err := helloworld.NewGreeterClient(inv).Hello(ctx, req, tt.opts...)

			if inv.calls != 1 {
				t.Fatalf("Invoke called %d times, want 1", inv.calls)
			}
			if inv.ctx.Value(ctxKey{}) != tt.name {
				t.Error("Invoke did not get the caller's context")
			}
			if inv.method != helloworld.Greeter_Hello_FullMethodName {
				t.Errorf("method = %q, want %q", inv.method, helloworld.Greeter_Hello_FullMethodName)
			}
			if inv.req != req {
				t.Errorf("Invoke got request %v, want the caller's %p", inv.req, req)
			}
			if _, ok := inv.replyArg.(*helloworld.HelloReply); !ok {
				t.Errorf("Invoke got reply of type %T, want *helloworld.HelloReply", inv.replyArg)
			}
			if !reflect.DeepEqual(inv.opts, tt.opts) {
				t.Errorf("Invoke got options %v, want %v", inv.opts, tt.opts)
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Errorf("Hello error = %v, want %v", err, tt.err)
				}
				if got != nil {
					t.Errorf("Hello returned reply %v with an error, want nil", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Hello: %v", err)
			}
			if got != inv.replyArg {
				t.Error("Hello did not return the message Invoke decoded into")
			}
			if got.GetMsg() != tt.wantReply {
				t.Errorf("reply = %q, want %q", got.GetMsg(), tt.wantReply)
			}
		})
	}
}

func TestFullMethodName(t *testing.T) {
	service, method, ok := rpc.SplitMethod(helloworld.Greeter_Hello_FullMethodName)
	if !ok {
		t.Fatalf("SplitMethod(%q) failed", helloworld.Greeter_Hello_FullMethodName)
	}
	desc := helloworld.Greeter_ServiceDesc
	if service != desc.ServiceName || method != desc.Methods[0].MethodName {
		t.Errorf("full method name routes to %s/%s, the ServiceDesc serves %s/%s",
			service, method, desc.ServiceName, desc.Methods[0].MethodName)
	}
}

// fakeRegistrar records what a Register function registers.
type fakeRegistrar struct {
	descs []*rpc.ServiceDesc
	impls []any
}

func (r *fakeRegistrar) RegisterService(desc *rpc.ServiceDesc, impl any) {
	r.descs = append(r.descs, desc)
	r.impls = append(r.impls, impl)
}

// greeter is a GreeterServer that records its calls.
type greeter struct {
	helloworld.UnimplementedGreeterServer
	calls int
	ctx   context.Context
	req   *helloworld.HelloRequest
	err   error
}

func (g *greeter) Hello(ctx context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	g.calls++
	g.ctx, g.req = ctx, req
	if g.err != nil {
		return nil, g.err
	}
	return &helloworld.HelloReply{Msg: "Hello " + req.GetMsg()}, nil
}

func TestRegisterGreeterServer(t *testing.T) {
	reg := &fakeRegistrar{}
	impl := &greeter{}
	helloworld.RegisterGreeterServer(reg, impl)

	if len(reg.descs) != 1 {
		t.Fatalf("RegisterService called %d times, want 1", len(reg.descs))
	}
	desc := reg.descs[0]
	if desc != &helloworld.Greeter_ServiceDesc {
		t.Errorf("registered desc %p, want &Greeter_ServiceDesc %p", desc, &helloworld.Greeter_ServiceDesc)
	}
	if reg.impls[0] != impl {
		t.Errorf("registered impl %v, want %v", reg.impls[0], impl)
	}
	if desc.ServiceName != "myrpc.helloworld.Greeter" {
		t.Errorf("ServiceName = %q", desc.ServiceName)
	}
	if desc.Metadata != "helloworld/helloworld.proto" {
		t.Errorf("Metadata = %q", desc.Metadata)
	}
	if len(desc.Methods) != 1 || desc.Methods[0].MethodName != "Hello" || desc.Methods[0].Handler == nil {
		t.Errorf("Methods = %+v, want one method Hello with a handler", desc.Methods)
	}
	// A registrar checks the implementation against HandlerType the way
	// grpc-go does: HandlerType is a nil pointer to the server interface.
	ht := reflect.TypeOf(desc.HandlerType)
	if ht == nil || ht.Kind() != reflect.Pointer || ht.Elem() != reflect.TypeFor[helloworld.GreeterServer]() {
		t.Fatalf("HandlerType is %v, want *helloworld.GreeterServer", ht)
	}
	if !reflect.TypeOf(impl).Implements(ht.Elem()) {
		t.Error("the registered implementation does not satisfy HandlerType")
	}
	if reflect.TypeFor[*fakeRegistrar]().Implements(ht.Elem()) {
		t.Error("HandlerType accepts a type that is not a GreeterServer")
	}
}

func TestGreeterHandler(t *testing.T) {
	errDecode := errors.New("bad body")
	errHandler := status.New(codes.NotFound, "no such greeting")
	tests := []struct {
		name string
		// dec is the decode function the server passes in.
		dec        func(proto.Message) error
		handlerErr error
		wantErr    error
		wantCalls  int
		wantReply  string
	}{
		{
			name: "ok",
			dec: func(m proto.Message) error {
				proto.Merge(m, &helloworld.HelloRequest{Msg: "world"})
				return nil
			},
			wantCalls: 1,
			wantReply: "Hello world",
		},
		{
			name:    "decode error",
			dec:     func(proto.Message) error { return errDecode },
			wantErr: errDecode,
		},
		{
			name:       "handler error",
			dec:        func(proto.Message) error { return nil },
			handlerErr: errHandler,
			wantErr:    errHandler,
			wantCalls:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			impl := &greeter{err: tt.handlerErr}
			ctx := context.WithValue(context.Background(), ctxKey{}, tt.name)
			var decoded proto.Message
			dec := func(m proto.Message) error {
				decoded = m
				return tt.dec(m)
			}

			reply, err := helloworld.Greeter_ServiceDesc.Methods[0].Handler(impl, ctx, dec, nil)

			if _, ok := decoded.(*helloworld.HelloRequest); !ok {
				t.Errorf("dec got a %T, want *helloworld.HelloRequest", decoded)
			}
			if impl.calls != tt.wantCalls {
				t.Fatalf("implementation called %d times, want %d", impl.calls, tt.wantCalls)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("handler error = %v, want %v", err, tt.wantErr)
				}
				if !isNil(reply) {
					t.Errorf("handler returned reply %v with an error, want nil", reply)
				}
				return
			}
			if err != nil {
				t.Fatalf("handler: %v", err)
			}
			if impl.ctx.Value(ctxKey{}) != tt.name {
				t.Error("implementation did not get the handler's context")
			}
			if impl.req != decoded {
				t.Error("implementation did not get the message dec filled")
			}
			got, ok := reply.(*helloworld.HelloReply)
			if !ok {
				t.Fatalf("reply is a %T, want *helloworld.HelloReply", reply)
			}
			if got.GetMsg() != tt.wantReply {
				t.Errorf("reply = %q, want %q", got.GetMsg(), tt.wantReply)
			}
		})
	}
}

// TestGreeterHandlerInterceptor: given an interceptor, the handler
// decodes the request, hands it to the interceptor with the method's info,
// and the interceptor's handler calls the implementation with the request
// and context it is given; what the interceptor returns is the answer.
func TestGreeterHandlerInterceptor(t *testing.T) {
	impl := &greeter{}
	dec := func(m proto.Message) error {
		proto.Merge(m, &helloworld.HelloRequest{Msg: "world"})
		return nil
	}
	var gotReq proto.Message
	var gotInfo *rpc.UnaryServerInfo
	ic := func(ctx context.Context, req proto.Message, info *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (proto.Message, error) {
		gotReq, gotInfo = req, info
		// The interceptor changes the request and the context on the way
		// in, and the reply on the way out.
		reply, err := handler(context.WithValue(ctx, ctxKey{}, "inner"), &helloworld.HelloRequest{Msg: "interceptor"})
		if err != nil {
			return nil, err
		}
		reply.(*helloworld.HelloReply).Msg += "!"
		return reply, nil
	}

	reply, err := helloworld.Greeter_ServiceDesc.Methods[0].Handler(impl, context.Background(), dec, ic)
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	if r, ok := gotReq.(*helloworld.HelloRequest); !ok || r.GetMsg() != "world" {
		t.Errorf("the interceptor got request %v, want the decoded HelloRequest", gotReq)
	}
	if gotInfo == nil || gotInfo.FullMethod != helloworld.Greeter_Hello_FullMethodName || gotInfo.Server != impl {
		t.Errorf("the interceptor got info %+v, want the method's name and the implementation", gotInfo)
	}
	if impl.calls != 1 || impl.req.GetMsg() != "interceptor" || impl.ctx.Value(ctxKey{}) != "inner" {
		t.Errorf("implementation: %d calls, request %v: want 1, with the interceptor's request and context", impl.calls, impl.req)
	}
	if got := reply.(*helloworld.HelloReply).GetMsg(); got != "Hello interceptor!" {
		t.Errorf("reply = %q, want the interceptor's %q", got, "Hello interceptor!")
	}

	// A request that does not decode never reaches the interceptor.
	errDecode := errors.New("bad body")
	called := false
	_, err = helloworld.Greeter_ServiceDesc.Methods[0].Handler(impl, context.Background(),
		func(proto.Message) error { return errDecode },
		func(ctx context.Context, req proto.Message, _ *rpc.UnaryServerInfo, h rpc.UnaryHandler) (proto.Message, error) {
			called = true
			return h(ctx, req)
		})
	if !errors.Is(err, errDecode) || called {
		t.Errorf("decode error: err %v, interceptor called %v; want the decode error and no call", err, called)
	}
}

// isNil reports whether m is nil or a nil pointer. A handler returns the
// implementation's (*HelloReply)(nil) as a non-nil proto.Message on error,
// as grpc-go's handlers do; servers look at the error first.
func isNil(m proto.Message) bool {
	return m == nil || reflect.ValueOf(m).IsNil()
}

// unimplemented is a server that implements nothing itself.
type unimplemented struct {
	helloworld.UnimplementedGreeterServer
}

func TestUnimplementedGreeterServer(t *testing.T) {
	tests := []struct {
		name string
		call func() (proto.Message, error)
	}{
		{
			name: "direct",
			call: func() (proto.Message, error) {
				return helloworld.UnimplementedGreeterServer{}.Hello(context.Background(), &helloworld.HelloRequest{})
			},
		},
		{
			name: "embedded, through the handler",
			call: func() (proto.Message, error) {
				dec := func(proto.Message) error { return nil }
				return helloworld.Greeter_ServiceDesc.Methods[0].Handler(unimplemented{}, context.Background(), dec, nil)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, err := tt.call()
			if got := status.Code(err); got != codes.Unimplemented {
				t.Errorf("code = %v (err %v), want Unimplemented", got, err)
			}
			var se *status.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *status.Error", err)
			}
			if se.Message() != "method Hello not implemented" {
				t.Errorf("message = %q", se.Message())
			}
			if !isNil(reply) {
				t.Errorf("reply = %v, want nil", reply)
			}
		})
	}
}
