// Package faultsvc is a service whose handlers misbehave on purpose, for
// the soak test: its one method, Panic, panics. It is described by hand, the
// way generated code would describe it, and uses the Echo service's
// messages, so it needs no .proto of its own. A bench server registers it
// when asked (benchserver -faults).
package faultsvc

import (
	"context"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/rpc"
)

// ServiceName is the name the service is registered under.
const ServiceName = "myrpc.bench.Faults"

// PanicMethod is the full method name of Panic.
const PanicMethod = "/" + ServiceName + "/Panic"

// PanicMessage is the value Panic panics with.
const PanicMessage = "faultsvc: a deliberate panic"

// Server is the service's handler type.
type Server interface {
	isFaults()
}

// Faults implements Server.
type Faults struct{}

func (Faults) isFaults() {}

// Desc describes the service.
var Desc = rpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*Server)(nil),
	Methods: []rpc.MethodDesc{
		{
			MethodName: "Panic",
			Handler: func(_ any, _ context.Context, dec func(proto.Message) error, _ rpc.UnaryServerInterceptor) (proto.Message, error) {
				in := new(echo.EchoRequest)
				if err := dec(in); err != nil {
					return nil, err
				}
				panic(PanicMessage)
			},
		},
	},
	Metadata: "benchmarks/internal/faultsvc/faultsvc.go",
}

// Register registers the service with s.
func Register(s rpc.ServiceRegistrar) { s.RegisterService(&Desc, Faults{}) }

// Panic calls Panic through inv. It returns the call's error, which from a
// healthy server is Internal.
func Panic(ctx context.Context, inv rpc.Invoker, payload []byte) error {
	return inv.Invoke(ctx, PanicMethod, &echo.EchoRequest{Payload: payload}, new(echo.EchoReply))
}
