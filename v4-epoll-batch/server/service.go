package server

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
)

// service is one registered service: its implementation and its methods by
// name.
type service struct {
	name    string
	impl    any
	methods map[string]*rpc.MethodDesc
}

// Register adds a service described by desc and implemented by impl. It
// fails if impl does not implement desc.HandlerType, or if a service of the
// same name is already registered.
func (s *Server) Register(desc *rpc.ServiceDesc, impl any) error {
	if impl == nil {
		return fmt.Errorf("rpc: Register(%s): nil implementation", desc.ServiceName)
	}
	if desc.HandlerType != nil {
		want := reflect.TypeOf(desc.HandlerType).Elem()
		if !reflect.TypeOf(impl).Implements(want) {
			return fmt.Errorf("rpc: Register(%s): %T does not implement %v", desc.ServiceName, impl, want)
		}
	}
	svc := &service{name: desc.ServiceName, impl: impl, methods: make(map[string]*rpc.MethodDesc, len(desc.Methods))}
	for i := range desc.Methods {
		m := &desc.Methods[i]
		svc.methods[m.MethodName] = m
	}
	// The routing table is copied on write, so that lookups on the hot path
	// take no lock.
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.services.Load()
	if _, dup := old[desc.ServiceName]; dup {
		return fmt.Errorf("rpc: Register(%s): service already registered", desc.ServiceName)
	}
	table := make(map[string]*service, len(old)+1)
	for k, v := range old {
		table[k] = v
	}
	table[desc.ServiceName] = svc
	s.services.Store(&table)
	return nil
}

// RegisterService implements rpc.ServiceRegistrar for generated code: it is
// Register, panicking on error, since a wrong registration is a programming
// error that no caller can recover from.
func (s *Server) RegisterService(desc *rpc.ServiceDesc, impl any) {
	if err := s.Register(desc, impl); err != nil {
		panic(err)
	}
}

// lookup finds a method. only, if not nil, is the set of services served on
// the listener the request came in on.
func (s *Server) lookup(only map[string]bool, service, method string) (*service, *rpc.MethodDesc, error) {
	svc := (*s.services.Load())[service]
	if svc == nil || (only != nil && !only[service]) {
		return nil, nil, status.Errorf(codes.Unimplemented, "rpc: unknown service %s", quoteName(service))
	}
	md := svc.methods[method]
	if md == nil {
		return nil, nil, status.Errorf(codes.Unimplemented, "rpc: unknown method %s of service %s", quoteName(method), quoteName(service))
	}
	return svc, md, nil
}

// maxQuotedName is how many bytes of a name an error quotes. A request's
// names fill up to the whole 64 KiB meta, and quoting one whole would push
// the response meta over its limit: the reply would become a code 8 about
// itself instead of the code 12 it is.
const maxQuotedName = 256

// quoteName quotes a name for an error message. A name longer than
// maxQuotedName is cut at a character boundary, and the message gives its
// length.
func quoteName(name string) string {
	if len(name) <= maxQuotedName {
		return strconv.Quote(name)
	}
	n := maxQuotedName
	for n > 0 && !utf8.RuneStart(name[n]) {
		n--
	}
	return fmt.Sprintf("%q... (%d bytes)", name[:n], len(name))
}

// invoke runs a handler. A panic in it becomes a code 13 error, and the panic
// and its stack are logged: one bad request must not take the server down.
func (s *Server) invoke(ctx context.Context, svc *service, md *rpc.MethodDesc, body []byte) (reply proto.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("rpc: handler panicked", "service", svc.name, "method", md.MethodName,
				"panic", r, "stack", string(debug.Stack()))
			reply, err = nil, status.New(codes.Internal, "rpc: the handler panicked; the server logged the details")
		}
	}()
	dec := func(m proto.Message) error {
		if err := proto.Unmarshal(body, m); err != nil {
			return status.Errorf(codes.InvalidArgument, "rpc: cannot decode the request body as %s: %v",
				m.ProtoReflect().Descriptor().FullName(), err)
		}
		return nil
	}
	return md.Handler(svc.impl, ctx, dec, nil)
}
