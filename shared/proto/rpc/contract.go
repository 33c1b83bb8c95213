// Package rpc is the stub contract: the small set of interfaces and plain
// types that generated stubs (*_myrpc.pb.go) are written against, and that
// every stage's server and client implement.
//
// It plays the part of grpc-go's ServiceRegistrar and ClientConnInterface.
// Because a stub depends only on these interfaces, one set of generated stubs
// serves all four stages, the benchmarks and the interop tests. The machinery
// behind the interfaces (the dialer, the pool, the multiplexer) belongs to
// the stage that introduces it.
package rpc

import (
	"context"
	"strings"

	"google.golang.org/protobuf/proto"
)

// MethodHandler runs one method of a service. srv is the implementation
// that was registered, dec decodes the request body into a message, and the
// returned message is the reply. interceptor, if not nil, runs around the
// implementation with the decoded request (see UnaryServerInterceptor); a
// server without interceptors passes nil, and the implementation is called
// directly. Generated code provides one per method.
type MethodHandler func(srv any, ctx context.Context, dec func(proto.Message) error, interceptor UnaryServerInterceptor) (proto.Message, error)

// MethodDesc describes one method of a service.
type MethodDesc struct {
	// MethodName is the name as written in the .proto, e.g. "Hello".
	MethodName string
	// Handler decodes the request and calls the implementation.
	Handler MethodHandler
}

// ServiceDesc describes a service: its name, the interface its
// implementation must satisfy, and its methods. Generated code provides one
// per service, e.g. helloworld.Greeter_ServiceDesc.
type ServiceDesc struct {
	// ServiceName is the full protobuf name, e.g. "myrpc.helloworld.Greeter".
	ServiceName string
	// HandlerType is a nil pointer to the service's server interface; a
	// registrar checks that the implementation satisfies it.
	HandlerType any
	// Methods lists the service's methods.
	Methods []MethodDesc
	// Metadata names the .proto file the service came from.
	Metadata string
}

// ServiceRegistrar is what generated Register functions call: a server of
// any stage. RegisterService panics if impl does not implement
// desc.HandlerType or the service is already registered, as registering the
// same route twice is a programming error (net/http's ServeMux and grpc-go do
// the same).
type ServiceRegistrar interface {
	RegisterService(desc *ServiceDesc, impl any)
}

// Invoker is what generated client stubs call: a client of any stage.
// Invoke sends req to the method and decodes the response into reply. It
// returns nil or an error that carries a status code (see package status).
//
// method is the full method name, "/" + service + "/" + method, as in the
// generated FullMethodName constants.
type Invoker interface {
	Invoke(ctx context.Context, method string, req, reply proto.Message, opts ...CallOption) error
}

// CallOption configures one call. Each stage's client package defines the
// options it understands; an invoker ignores options it does not know, so a
// stub passes them through without looking at them.
type CallOption interface {
	// IsCallOption marks the type as a call option.
	IsCallOption()
}

// SplitMethod splits a full method name "/service/method" into its two
// parts. ok is false if the name does not have that shape.
func SplitMethod(fullMethod string) (service, method string, ok bool) {
	if !strings.HasPrefix(fullMethod, "/") {
		return "", "", false
	}
	rest := fullMethod[1:]
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}
