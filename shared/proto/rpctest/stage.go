package rpctest

import (
	"context"
	"log/slog"
	"net"
	"time"

	"myrpc/shared/proto/rpc"
)

// Server is a server of some stage, as the suite drives it.
type Server interface {
	rpc.ServiceRegistrar
	// Serve serves on lis until Shutdown or Close.
	Serve(lis net.Listener) error
	// Shutdown stops gracefully within ctx.
	Shutdown(ctx context.Context) error
}

// Client is a client of some stage.
type Client interface {
	rpc.Invoker
	Close() error
}

// ServerConfig holds the server settings a test needs to choose. A zero
// field means the stage's default.
type ServerConfig struct {
	MaxFrameSize int
	FrameTimeout time.Duration
	IdleTimeout  time.Duration
	MaxConns     int
	Logger       *slog.Logger

	// WriteTimeout bounds the writing of a response (WithWriteTimeout).
	// Workers is the size of the pool that runs the handlers (V2 on:
	// WithWorkers); a stage without a pool ignores it.
	WriteTimeout time.Duration
	Workers      int
}

// ClientConfig holds the client settings a test needs to choose. A zero
// field means the stage's default.
type ClientConfig struct {
	MaxFrameSize int
	Logger       *slog.Logger

	// MaxInFlight caps the calls in flight to one server (V2: the pool's
	// MaxActive), and WaitTimeout bounds a call's wait when the cap is
	// reached (V2: the pool's WaitTimeout).
	MaxInFlight int
	WaitTimeout time.Duration
	// MaxSequenceID is where a multiplexing client's sequence ids wrap
	// around (V3 on); 0 means the stage's default.
	MaxSequenceID uint32
}

// Stage describes a stage to the suite: how to make its servers and
// clients, and which features it has, which decides the rows that apply.
type Stage struct {
	// Name is the stage's short name, e.g. "v1".
	Name string
	// NewServer returns a new, unstarted server.
	NewServer func(cfg ServerConfig) Server
	// NewClient returns a client that calls the server at addr.
	NewClient func(addr string, cfg ClientConfig) Client
	// ErrServerClosed is the error Serve returns after Shutdown.
	ErrServerClosed error

	// LongConnections is true when the server answers many requests on one
	// connection (V2 on); false for V1's one request per connection.
	LongConnections bool
	// ReusesConnections is true when the client keeps connections between
	// calls (V2 on), so that it has a cap on calls in flight (MaxInFlight)
	// and must notice connections that died while it held them.
	ReusesConnections bool

	// Reactor is true when the server reads its connections from reactors
	// on epoll and batches its writes (V4).
	Reactor bool

	// Multiplexed is true when the client has many calls in flight on one
	// connection, matched by sequence id (V3 on). Such a stage provides the
	// hooks below.
	Multiplexed bool
	// Pending returns the number of calls in the client's pending tables.
	Pending func(Client) int
	// Dropped returns the number of responses the client dropped because
	// no call was waiting for them.
	Dropped func(Client) uint64
	// RetryOptions returns the call options for a retry policy of the
	// given attempts (a short backoff), the call marked idempotent or not,
	// and each attempt bounded by perAttempt if it is not 0.
	RetryOptions func(attempts int, idempotent bool, perAttempt time.Duration) []rpc.CallOption

	// Cluster, for a stage whose clients find their servers in a registry
	// and spread calls over them (V5), runs the cluster rows; nil for the
	// others.
	Cluster *Cluster
}
