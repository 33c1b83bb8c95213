package rpc

import (
	"context"

	"google.golang.org/protobuf/proto"
)

// UnaryServerInfo describes the call an interceptor runs around.
type UnaryServerInfo struct {
	// Server is the service's implementation, as it was registered.
	Server any
	// FullMethod is the method's full name, "/service/method".
	FullMethod string
}

// UnaryHandler is the next step of a call on the server: the next
// interceptor, or the method's implementation. It takes the decoded
// request and returns the reply.
type UnaryHandler func(ctx context.Context, req proto.Message) (proto.Message, error)

// UnaryServerInterceptor runs around a method's implementation on the
// server, as grpc-go's does: it gets the call's context, the decoded
// request, the method's info and handler, the next step, and returns the
// reply and error the caller gets. It may look at or change any of them,
// call handler more than once, or not at all and answer itself. A request
// that does not decode never reaches the interceptors: the server answers
// it with code 3.
type UnaryServerInterceptor func(ctx context.Context, req proto.Message, info *UnaryServerInfo, handler UnaryHandler) (proto.Message, error)

// UnaryInvoker is the next step of a call on the client: the next
// interceptor, or the client's own sending of the request.
type UnaryInvoker func(ctx context.Context, method string, req, reply proto.Message, opts ...CallOption) error

// UnaryClientInterceptor runs around a call on the client, as grpc-go's
// does: it gets the call's context, the full method name, the request, the
// reply to fill in, cc (the client, to make other calls through), invoker,
// the next step, and the call's options, and returns the call's error.
type UnaryClientInterceptor func(ctx context.Context, method string, req, reply proto.Message, cc Invoker, invoker UnaryInvoker, opts ...CallOption) error

// ChainUnaryServer returns one interceptor that runs interceptors in turn,
// the first outermost: the first sees the call first and its result last.
// Nil interceptors are left out. With none, it returns nil, which a
// MethodHandler takes as "call the implementation directly".
func ChainUnaryServer(interceptors ...UnaryServerInterceptor) UnaryServerInterceptor {
	var ics []UnaryServerInterceptor
	for _, ic := range interceptors {
		if ic != nil {
			ics = append(ics, ic)
		}
	}
	switch len(ics) {
	case 0:
		return nil
	case 1:
		return ics[0]
	}
	return func(ctx context.Context, req proto.Message, info *UnaryServerInfo, handler UnaryHandler) (proto.Message, error) {
		return ics[0](ctx, req, info, serverStep(ics, 1, info, handler))
	}
}

// serverStep returns the handler that runs ics[i] and, after the last
// interceptor, final.
func serverStep(ics []UnaryServerInterceptor, i int, info *UnaryServerInfo, final UnaryHandler) UnaryHandler {
	if i == len(ics) {
		return final
	}
	return func(ctx context.Context, req proto.Message) (proto.Message, error) {
		return ics[i](ctx, req, info, serverStep(ics, i+1, info, final))
	}
}

// ChainUnaryClient returns one interceptor that runs interceptors in turn,
// the first outermost. Nil interceptors are left out; with none, it
// returns nil.
func ChainUnaryClient(interceptors ...UnaryClientInterceptor) UnaryClientInterceptor {
	var ics []UnaryClientInterceptor
	for _, ic := range interceptors {
		if ic != nil {
			ics = append(ics, ic)
		}
	}
	switch len(ics) {
	case 0:
		return nil
	case 1:
		return ics[0]
	}
	return func(ctx context.Context, method string, req, reply proto.Message, cc Invoker, invoker UnaryInvoker, opts ...CallOption) error {
		return ics[0](ctx, method, req, reply, cc, clientStep(ics, 1, cc, invoker), opts...)
	}
}

// clientStep returns the invoker that runs ics[i] and, after the last
// interceptor, final.
func clientStep(ics []UnaryClientInterceptor, i int, cc Invoker, final UnaryInvoker) UnaryInvoker {
	if i == len(ics) {
		return final
	}
	return func(ctx context.Context, method string, req, reply proto.Message, opts ...CallOption) error {
		return ics[i](ctx, method, req, reply, cc, clientStep(ics, i+1, cc, final), opts...)
	}
}
