// Package impls holds every implementation the benchmarks compare: the
// myrpc stages, grpc-go, net/rpc, and three raw-TCP echoes that bound what
// loopback allows. Each serves the same Echo workload and registers itself
// by name from its own file, so adding one is adding a file.
package impls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"time"

	"myrpc/shared/proto/rpc"
)

// Kinds of implementation, for the docs.
const (
	// KindStage is a stage of myrpc.
	KindStage = "myrpc stage"
	// KindBaseline is what a user would pick instead.
	KindBaseline = "baseline"
	// KindLimit is raw TCP with no RPC at all: the physical limit.
	KindLimit = "limit"
)

// Options configure the server and the client of an implementation.
type Options struct {
	// Logger receives the implementation's own log records.
	Logger *slog.Logger
	// MaxConns, when above 0, limits the connections a client opens to the
	// server, for the implementations whose clients can be limited (the
	// pooled and multiplexed stages, kitex-mux, and trpc, whose calls
	// beyond it wait for a connection); 0 leaves their defaults. grpc-go
	// and net/rpc use one connection whatever it says; kitex's default
	// pool has no bound to set.
	MaxConns int

	// Faults, for the servers of the myrpc stages, registers the service
	// of package faultsvc too, whose Panic method panics. The soak test
	// calls it; other servers ignore Faults.
	Faults bool

	// Delay, for the servers of the myrpc stages, makes the Echo handler
	// wait this long before it answers every call, as a slow server of a
	// cluster would (the cluster scenario); other servers ignore it.
	Delay time.Duration
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// Server is the server side of an implementation.
type Server interface {
	// Serve accepts connections on lis and echoes every request until Stop;
	// then it returns nil. It closes lis.
	Serve(lis net.Listener) error
	// Stop stops serving and closes every connection, waiting for calls in
	// flight until ctx ends.
	Stop(ctx context.Context) error
}

// InvokerClient is a Client whose callers call through a myrpc stage's own
// client, which Invoker returns: it calls any method, not only Echo.
type InvokerClient interface {
	Client
	Invoker() rpc.Invoker
}

// Counter is implemented by servers that count their own work, such as the
// mean frames per write syscall. Stats is called after Stop.
type Counter interface {
	Stats() map[string]float64
}

// StatFramesPerWrite is the Stats key of the mean number of response frames
// sent by one write syscall.
const StatFramesPerWrite = "frames_per_write"

// Client is the client side of an implementation, shared by all callers.
type Client interface {
	// NewCaller returns the handle one caller goroutine makes its calls
	// through. Handles may share the client's connections, or own one.
	NewCaller() (Caller, error)
	// Close releases the client's connections. Call it after every
	// handle's last call.
	Close() error
}

// Caller makes calls for one goroutine; it is not safe for concurrent use.
type Caller interface {
	// Call sends payload to the Echo service and waits for the echo, which
	// it checks. It returns by ctx's deadline at the latest.
	Call(ctx context.Context, payload []byte) error
	// Close releases what the handle owns.
	Close() error
}

// SlowCaller is a Caller that can also ask the server to wait before it
// answers, as the head-of-line scenario's slow calls do (Echo's delay_ms).
// The raw implementations do not decode requests and cannot.
type SlowCaller interface {
	Caller
	// CallDelay is Call with the server waiting delay before it answers.
	CallDelay(ctx context.Context, payload []byte, delay time.Duration) error
}

// MarkedCaller is a Caller that can also tell whether the server that
// answered a call was one started with Options.Delay, by the mark such a
// server puts in its response metadata (SlowMarkKey). The cluster
// scenario needs it to measure the calls the other servers answered.
type MarkedCaller interface {
	Caller
	// CallMarked is Call, and reports whether a slow server answered.
	CallMarked(ctx context.Context, payload []byte) (slow bool, err error)
}

// Impl is one implementation.
type Impl struct {
	// Name is what -impls takes, e.g. "v1" or "raw-pipe".
	Name string
	// Kind is KindStage, KindBaseline or KindLimit.
	Kind string
	// Summary says in a sentence or two what the implementation is and how
	// its client uses connections; the docs print it.
	Summary string
	// NewServer returns a server, not yet serving.
	NewServer func(Options) (Server, error)
	// NewClient returns a client of the server at addr.
	NewClient func(addr string, o Options) (Client, error)

	// NewClusterClient, for a stage that balances (V5), returns one client
	// of all the servers at addrs, which spreads the calls over them by
	// policy ("p2c" or "round_robin"); nil for the others. Its callers
	// are MarkedCallers.
	NewClusterClient func(addrs []string, policy string, o Options) (Client, error)
}

// order is the order of the tables, the chart and the default -impls.
var order = []string{"v1", "v2", "v3", "v4", "v5", "kitex", "kitex-mux", "trpc", "grpc", "netrpc", "raw-conn", "raw-pool", "raw-pipe"}

var registry = map[string]Impl{}

// register adds an implementation; each implementation's file calls it
// from init.
func register(i Impl) {
	if _, dup := registry[i.Name]; dup {
		panic("impls: " + i.Name + " registered twice")
	}
	registry[i.Name] = i
}

// Lookup returns the implementation called name.
func Lookup(name string) (Impl, bool) {
	i, ok := registry[name]
	return i, ok
}

// Names returns the names of every implementation, in table order.
func Names() []string {
	var names []string
	for _, n := range order {
		if _, ok := registry[n]; ok {
			names = append(names, n)
		}
	}
	var rest []string
	for n := range registry {
		if !slices.Contains(order, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(names, rest...)
}

// Rank orders implementation names as the tables do: known ones in table
// order, others after them.
func Rank(name string) int {
	if i := slices.Index(order, name); i >= 0 {
		return i
	}
	return len(order)
}

// ErrMismatch is returned by a call whose echo differs from its payload.
var ErrMismatch = errors.New("bench: the echo differs from the payload")

// checkEcho returns nil if got is the echo of sent.
func checkEcho(sent, got []byte) error {
	if !bytes.Equal(sent, got) {
		return fmt.Errorf("%w: sent %d bytes, got %d", ErrMismatch, len(sent), len(got))
	}
	return nil
}
