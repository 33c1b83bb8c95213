package impls

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/klog"
	"github.com/cloudwego/kitex/pkg/remote"
	"github.com/cloudwego/kitex/server"

	kitexpb "myrpc/benchmarks/kitexecho/kitex_gen/kitexecho"
	kitexsvc "myrpc/benchmarks/kitexecho/kitex_gen/kitexecho/echo"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/services"
)

// kitexMuxConns is the number of connections a kitex-mux client opens
// when Options.MaxConns leaves it free: the two that kitex's own benchmark
// (cloudwego/kitex-benchmark) gives its multiplexed client.
const kitexMuxConns = 2

func init() {
	// kitex logs through a global logger of its own, which says Info at
	// every start; it reports warnings and errors only, as the harness's
	// loggers do.
	klog.SetLevel(klog.LevelWarn)
	register(Impl{
		Name: "kitex",
		Kind: KindBaseline,
		Summary: "CloudWeGo kitex on its netpoll transport with its default settings, serving the same Echo messages over protobuf. " +
			"All callers share one kitex client, whose default pool of long connections gives each call an idle connection of its own " +
			"or dials a new one, and keeps up to 10 idle; it has no bound on the connections it opens, so the head-of-line budget does not apply.",
		NewServer: func(Options) (Server, error) { return newKitexServer(false), nil },
		NewClient: func(addr string, o Options) (Client, error) { return newKitexClient(addr, o, false) },
	})
	register(Impl{
		Name: "kitex-mux",
		Kind: KindBaseline,
		Summary: "kitex as above in its multiplexed mode (`server.WithMuxTransport`, `client.WithMuxConnection(2)`). " +
			"All callers share one kitex client and its 2 connections, the count kitex's own benchmark (kitex-benchmark) gives it, " +
			"many calls in flight on each.",
		NewServer: func(Options) (Server, error) { return newKitexServer(true), nil },
		NewClient: func(addr string, o Options) (Client, error) { return newKitexClient(addr, o, true) },
	})
}

// kitexEcho serves the kitex Echo service with the Echo implementation
// every myrpc stage serves. The messages are kitex's own structs, with the
// same fields as echo's.
type kitexEcho struct {
	// abort is cancelled when the server stops without waiting any
	// longer: a delayed echo then returns at once.
	abort context.Context

	// delayed counts the delayed echoes under way.
	delayed atomic.Int32
}

func (h *kitexEcho) Echo(ctx context.Context, req *kitexpb.EchoRequest) (*kitexpb.EchoReply, error) {
	if req.GetDelayMs() > 0 {
		h.delayed.Add(1)
		defer h.delayed.Add(-1)
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(h.abort, cancel)
		defer stop()
	}
	reply, err := services.Echo{}.Echo(ctx, &echo.EchoRequest{Payload: req.GetPayload(), DelayMs: req.GetDelayMs()})
	if err != nil {
		return nil, err
	}
	return &kitexpb.EchoReply{Payload: reply.GetPayload()}, nil
}

// kitexServer runs a kitex server on the listener Serve is given. kitex's
// own Stop waits for busy connections for its exit wait time and then
// leaves them open; Stop here closes them, and ends delayed echoes, when
// its context ends first.
type kitexServer struct {
	mux bool
	// exit is closed by Stop; kitex's Run waits for it instead of SIGINT
	// and SIGTERM, and then stops gracefully.
	exit chan error
	// echo is the service; abortNow cancels its abort.
	echo     *kitexEcho
	abortNow context.CancelFunc
	// done is closed when Serve returns.
	done chan struct{}
	// conns are the server's connections.
	conns *kitexConns

	mu sync.Mutex // guards serving and stopping
	// serving is set by Serve, stopping by Stop.
	serving, stopping bool
}

func newKitexServer(mux bool) *kitexServer {
	abort, abortNow := context.WithCancel(context.Background())
	return &kitexServer{
		mux:      mux,
		exit:     make(chan error),
		echo:     &kitexEcho{abort: abort},
		abortNow: abortNow,
		done:     make(chan struct{}),
		conns:    &kitexConns{m: map[net.Conn]struct{}{}},
	}
}

func (s *kitexServer) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return lis.Close()
	}
	s.serving = true
	s.mu.Unlock()
	defer close(s.done)
	opts := []server.Option{
		server.WithListener(lis),
		server.WithExitSignal(func() <-chan error { return s.exit }),
		server.WithBoundHandler(s.conns),
	}
	if s.mux {
		opts = append(opts, server.WithMuxTransport())
	}
	return kitexsvc.NewServer(s.echo, opts...).Run()
}

func (s *kitexServer) Stop(ctx context.Context) error {
	s.mu.Lock()
	serving := s.serving
	if !s.stopping {
		s.stopping = true
		close(s.exit)
	}
	s.mu.Unlock()
	if !serving {
		s.abortNow()
		return nil
	}
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Whether kitex stopped waiting or ctx did, nothing may stay open.
	s.abortNow()
	s.conns.closeAll()
	<-s.done
	return err
}

// kitexConns is an inbound handler of the kitex server's transport
// pipeline that keeps the server's connections, so that Stop can close
// those kitex leaves open.
type kitexConns struct {
	mu sync.Mutex // guards m and closed
	m  map[net.Conn]struct{}
	// closed is set by closeAll: a connection accepted after it is
	// closed at once.
	closed bool
}

var _ remote.InboundHandler = (*kitexConns)(nil)

func (k *kitexConns) OnActive(ctx context.Context, conn net.Conn) (context.Context, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return ctx, errors.New("bench: the kitex server is stopping")
	}
	k.m[conn] = struct{}{}
	return ctx, nil
}

func (k *kitexConns) OnInactive(ctx context.Context, conn net.Conn) context.Context {
	k.mu.Lock()
	delete(k.m, conn)
	k.mu.Unlock()
	return ctx
}

func (k *kitexConns) OnRead(ctx context.Context, _ net.Conn) (context.Context, error) {
	return ctx, nil
}

func (k *kitexConns) OnMessage(ctx context.Context, _, _ remote.Message) (context.Context, error) {
	return ctx, nil
}

// closeAll closes every connection still open, and those accepted later.
func (k *kitexConns) closeAll() {
	k.mu.Lock()
	k.closed = true
	conns := make([]net.Conn, 0, len(k.m))
	for c := range k.m {
		conns = append(conns, c)
	}
	k.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// kitexClient is one kitex client shared by every caller. It is built
// from the generated service info rather than by the generated NewClient,
// which hides the client's Close that releases its connections.
type kitexClient struct {
	kc client.Client

	// warm is set once the first warmCalls calls have been made, one at a
	// time under warmMu: see newKitexClient.
	warm      atomic.Bool
	warmMu    sync.Mutex // makes the first warmCalls calls one at a time
	warmCalls int
}

func newKitexClient(addr string, o Options, mux bool) (*kitexClient, error) {
	c := &kitexClient{}
	opts := []client.Option{client.WithDestService("echo"), client.WithHostPorts(addr)}
	if mux {
		n := kitexMuxConns
		if o.MaxConns > 0 {
			n = o.MaxConns
		}
		opts = append(opts, client.WithMuxConnection(n))
		// kitex's mux pool fills its n connection slots without a lock
		// while other calls read them (a data race in kitex v0.16.0's
		// netpollmux.MuxPool: conns.put against conns.get). The k-th of
		// the first n calls made one after another fills slot k, so
		// once they have been made the calls only read, until a
		// connection breaks and kitex dials it again.
		c.warmCalls = n
	} else {
		c.warm.Store(true)
	}
	kc, err := client.NewClient(kitexsvc.NewServiceInfo(), opts...)
	if err != nil {
		return nil, err
	}
	c.kc = kc
	return c, nil
}

func (c *kitexClient) NewCaller() (Caller, error) { return kitexCaller{c}, nil }

func (c *kitexClient) Close() error {
	if cl, ok := c.kc.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// call makes one call, the first warmCalls ones one at a time.
func (c *kitexClient) call(ctx context.Context, args *kitexsvc.EchoArgs, result *kitexsvc.EchoResult) error {
	if !c.warm.Load() {
		c.warmMu.Lock()
		if c.warmCalls > 0 {
			defer c.warmMu.Unlock()
			if c.warmCalls--; c.warmCalls == 0 {
				defer c.warm.Store(true)
			}
			return c.kc.Call(ctx, "Echo", args, result)
		}
		c.warmMu.Unlock()
	}
	return c.kc.Call(ctx, "Echo", args, result)
}

type kitexCaller struct{ c *kitexClient }

func (c kitexCaller) Call(ctx context.Context, payload []byte) error {
	return c.CallDelay(ctx, payload, 0)
}

func (c kitexCaller) CallDelay(ctx context.Context, payload []byte, delay time.Duration) error {
	// What the generated client's Echo does.
	args := kitexsvc.EchoArgs{Req: &kitexpb.EchoRequest{Payload: payload, DelayMs: uint32(delay.Milliseconds())}}
	var result kitexsvc.EchoResult
	if err := c.c.call(ctx, &args, &result); err != nil {
		return err
	}
	return checkEcho(payload, result.GetSuccess().GetPayload())
}

func (kitexCaller) Close() error { return nil }
