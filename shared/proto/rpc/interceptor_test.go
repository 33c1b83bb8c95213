package rpc_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
)

// serverRecorder returns an interceptor that appends name to *trace on the
// way in and "/"+name on the way out.
func serverRecorder(name string, trace *[]string) rpc.UnaryServerInterceptor {
	return func(ctx context.Context, req proto.Message, info *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (proto.Message, error) {
		*trace = append(*trace, name)
		reply, err := handler(ctx, req)
		*trace = append(*trace, "/"+name)
		return reply, err
	}
}

func TestChainUnaryServer(t *testing.T) {
	if rpc.ChainUnaryServer() != nil || rpc.ChainUnaryServer(nil, nil) != nil {
		t.Fatal("a chain of no interceptors is not nil")
	}
	tests := []struct {
		name      string
		names     []string
		wantTrace []string
	}{
		{name: "one", names: []string{"a"}, wantTrace: []string{"a", "handler", "/a"}},
		{name: "three", names: []string{"a", "b", "c"}, wantTrace: []string{"a", "b", "c", "handler", "/c", "/b", "/a"}},
		{name: "nils left out", names: []string{"", "a", "", "b", ""}, wantTrace: []string{"a", "b", "handler", "/b", "/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trace []string
			var ics []rpc.UnaryServerInterceptor
			for _, n := range tt.names {
				if n == "" {
					ics = append(ics, nil)
					continue
				}
				ics = append(ics, serverRecorder(n, &trace))
			}
			chain := rpc.ChainUnaryServer(ics...)
			info := &rpc.UnaryServerInfo{FullMethod: "/s/M"}
			req := &helloworld.HelloRequest{Msg: "in"}
			want := &helloworld.HelloReply{Msg: "out"}
			errWant := errors.New("handler error")
			got, err := chain(context.Background(), req, info, func(ctx context.Context, r proto.Message) (proto.Message, error) {
				trace = append(trace, "handler")
				if r != req {
					t.Errorf("the handler got %v, want the request", r)
				}
				return want, errWant
			})
			if got != want || err != errWant {
				t.Errorf("chain returned %v, %v; want the handler's %v, %v", got, err, want, errWant)
			}
			if !slices.Equal(trace, tt.wantTrace) {
				t.Errorf("order = %v, want %v", trace, tt.wantTrace)
			}
		})
	}
}

// TestChainUnaryServerInfo: every interceptor of a chain gets the call's
// info, and one that answers itself stops the chain.
func TestChainUnaryServerInfo(t *testing.T) {
	info := &rpc.UnaryServerInfo{FullMethod: "/s/M", Server: "impl"}
	var seen []*rpc.UnaryServerInfo
	look := func(ctx context.Context, req proto.Message, i *rpc.UnaryServerInfo, h rpc.UnaryHandler) (proto.Message, error) {
		seen = append(seen, i)
		return h(ctx, req)
	}
	errStop := errors.New("stopped")
	stop := func(context.Context, proto.Message, *rpc.UnaryServerInfo, rpc.UnaryHandler) (proto.Message, error) {
		return nil, errStop
	}
	handlerRan := false
	_, err := rpc.ChainUnaryServer(look, look, stop, look)(context.Background(), nil, info,
		func(context.Context, proto.Message) (proto.Message, error) { handlerRan = true; return nil, nil })
	if err != errStop || handlerRan || len(seen) != 2 || seen[0] != info || seen[1] != info {
		t.Errorf("err %v, handler ran %v, infos %v: want the stop, no handler, the info twice", err, handlerRan, seen)
	}
}

// clientRecorder is serverRecorder's client side.
func clientRecorder(name string, trace *[]string) rpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply proto.Message, cc rpc.Invoker, invoker rpc.UnaryInvoker, opts ...rpc.CallOption) error {
		*trace = append(*trace, name)
		err := invoker(ctx, method, req, reply, opts...)
		*trace = append(*trace, "/"+name)
		return err
	}
}

type fakeCC struct{}

func (fakeCC) Invoke(context.Context, string, proto.Message, proto.Message, ...rpc.CallOption) error {
	return nil
}

type option struct{}

func (option) IsCallOption() {}

func TestChainUnaryClient(t *testing.T) {
	if rpc.ChainUnaryClient() != nil || rpc.ChainUnaryClient(nil) != nil {
		t.Fatal("a chain of no interceptors is not nil")
	}
	var trace []string
	var gotCC []rpc.Invoker
	seeCC := func(ctx context.Context, method string, req, reply proto.Message, cc rpc.Invoker, invoker rpc.UnaryInvoker, opts ...rpc.CallOption) error {
		gotCC = append(gotCC, cc)
		return invoker(ctx, method, req, reply, opts...)
	}
	chain := rpc.ChainUnaryClient(clientRecorder("a", &trace), nil, seeCC, clientRecorder("b", &trace), seeCC)
	req, reply := &helloworld.HelloRequest{}, &helloworld.HelloReply{}
	errWant := errors.New("invoker error")
	cc := fakeCC{}
	opt := option{}
	err := chain(context.Background(), "/s/M", req, reply, cc, func(ctx context.Context, method string, r, rp proto.Message, opts ...rpc.CallOption) error {
		trace = append(trace, "invoker")
		if method != "/s/M" || r != req || rp != reply || len(opts) != 1 || opts[0] != opt {
			t.Errorf("the invoker got %q, %v, %v, %v", method, r, rp, opts)
		}
		return errWant
	}, opt)
	if err != errWant {
		t.Errorf("chain returned %v, want the invoker's", err)
	}
	if want := []string{"a", "b", "invoker", "/b", "/a"}; !slices.Equal(trace, want) {
		t.Errorf("order = %v, want %v", trace, want)
	}
	if len(gotCC) != 2 || gotCC[0] != cc || gotCC[1] != cc {
		t.Errorf("the interceptors got cc %v, want the client twice", gotCC)
	}
}
