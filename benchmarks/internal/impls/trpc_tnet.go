//go:build !race

package impls

import (
	"trpc.group/trpc-go/trpc-go/client"
	"trpc.group/trpc-go/trpc-go/pool/connpool"
	"trpc.group/trpc-go/trpc-go/server"
	trpctnet "trpc.group/trpc-go/trpc-go/transport/tnet"
)

// trpc-go's default transport, tnet, for the trpc protocol over TCP: the
// server and the client need no option to choose it, and the client's
// connection pool dials and checks tnet connections as tnet's default pool
// does.
var (
	trpcServerOptions []server.Option
	trpcClientOptions []client.Option
	trpcDial          connpool.DialFunc      = trpctnet.Dial
	trpcHealthChecker connpool.HealthChecker = trpctnet.HealthChecker
)
