// Package conformance runs the shared conformance suite (package
// myrpc/shared/proto/rpctest) against the V5 server and client, the
// cluster rows with etcd started in the test's process.
package conformance

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/rpctest"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/etcdtest"
	"myrpc/v5-cluster/mux"
	"myrpc/v5-cluster/registry"
	"myrpc/v5-cluster/server"
)

// stage describes V5 to the suite.
var stage = rpctest.Stage{
	Name: "v5",
	NewServer: func(cfg rpctest.ServerConfig) rpctest.Server {
		var opts []server.Option
		if cfg.MaxFrameSize > 0 {
			opts = append(opts, server.WithMaxFrameSize(cfg.MaxFrameSize))
		}
		if cfg.FrameTimeout > 0 {
			opts = append(opts, server.WithFrameTimeout(cfg.FrameTimeout))
		}
		if cfg.IdleTimeout > 0 {
			opts = append(opts, server.WithIdleTimeout(cfg.IdleTimeout))
		}
		if cfg.MaxConns > 0 {
			opts = append(opts, server.WithMaxConns(cfg.MaxConns))
		}
		if cfg.Logger != nil {
			opts = append(opts, server.WithLogger(cfg.Logger))
		}
		if cfg.WriteTimeout > 0 {
			opts = append(opts, server.WithWriteTimeout(cfg.WriteTimeout))
		}
		if cfg.Workers > 0 {
			opts = append(opts, server.WithWorkers(cfg.Workers))
		}
		return server.New(opts...)
	},
	NewClient: func(addr string, cfg rpctest.ClientConfig) rpctest.Client {
		return client.New(addr, clientOptions(cfg)...)
	},
	ErrServerClosed: server.ErrServerClosed,

	LongConnections:   true,
	ReusesConnections: true,

	Reactor: true,

	Multiplexed: true,
	Pending:     func(c rpctest.Client) int { return c.(*client.Client).MuxStats().Streams },
	Dropped:     func(c rpctest.Client) uint64 { return c.(*client.Client).MuxStats().Dropped },
	RetryOptions: func(attempts int, idempotent bool, perAttempt time.Duration) []rpc.CallOption {
		opts := []rpc.CallOption{client.Retry(client.RetryPolicy{
			Attempts: attempts, Base: 5 * time.Millisecond, Cap: 50 * time.Millisecond, Jitter: 0.2, PerAttempt: perAttempt,
		})}
		if idempotent {
			opts = append(opts, client.Idempotent())
		}
		return opts
	},

	Cluster: &rpctest.Cluster{
		StartRegistry: func(t *testing.T, members int) rpctest.Registry {
			return etcdRegistry{etcdtest.StartCluster(t, members)}
		},
		LeakWait: etcdtest.LeakWait,
	},
}

// clientOptions are the client options of cfg.
func clientOptions(cfg rpctest.ClientConfig) []client.Option {
	var opts []client.Option
	if cfg.MaxFrameSize > 0 {
		opts = append(opts, client.WithMaxFrameSize(cfg.MaxFrameSize))
	}
	if cfg.Logger != nil {
		opts = append(opts, client.WithLogger(cfg.Logger))
	}
	// The cap on calls in flight is one connection carrying that many.
	mc := mux.Config{WaitTimeout: cfg.WaitTimeout, MaxSeq: cfg.MaxSequenceID}
	if cfg.MaxInFlight > 0 {
		mc.MaxConns, mc.MaxStreams = 1, cfg.MaxInFlight
	}
	opts = append(opts, client.WithMux(mc))
	return opts
}

// etcdRegistry is etcd, started in the test's process, as the cluster
// rows drive it.
type etcdRegistry struct{ c *etcdtest.Cluster }

func (r etcdRegistry) Register(t *testing.T, service, addr string, ttl time.Duration) rpctest.Registration {
	t.Helper()
	// A client of the registration's own, which Abandon closes: its lease
	// is then kept alive by nobody, as a dead server's would be.
	cli, err := registry.NewClient(r.c.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), etcdtest.StartTimeout)
	defer cancel()
	reg, err := registry.Register(ctx, cli, service, addr, ttl)
	if err != nil {
		cli.Close()
		t.Fatal(err)
	}
	er := &etcdRegistration{reg: reg, cli: cli}
	t.Cleanup(er.Abandon)
	return er
}

func (r etcdRegistry) NewClient(t *testing.T, service string, cfg rpctest.ClientConfig) rpctest.Client {
	t.Helper()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg.Logger = log
	}
	opts := append(clientOptions(cfg), client.WithResolver(registry.NewResolver(r.c.Client(), registry.WithLogger(log))))
	c := client.New("etcd:///"+service, opts...)
	t.Cleanup(func() { c.Close() })
	return c
}

func (r etcdRegistry) StopMember(t *testing.T, i int)    { r.c.Stop(i) }
func (r etcdRegistry) RestartMember(t *testing.T, i int) { r.c.Restart(i) }

// etcdRegistration is a registration with its own etcd client.
type etcdRegistration struct {
	reg *registry.Registration
	cli *clientv3.Client
}

func (r *etcdRegistration) Deregister(ctx context.Context) error { return r.reg.Deregister(ctx) }

// Abandon closes the registration's client, which ends the keep-alive and
// leaves the key to its lease.
func (r *etcdRegistration) Abandon() { _ = r.cli.Close() }

func TestMain(m *testing.M) {
	// ants starts a default pool when it is imported: its goroutines are
	// there before any test runs.
	etcdtest.VerifyTestMain(m, goleak.IgnoreCurrent())
}

func TestConformance(t *testing.T) { rpctest.RunConformance(t, stage) }

func TestReliability(t *testing.T) { rpctest.RunReliability(t, stage) }
