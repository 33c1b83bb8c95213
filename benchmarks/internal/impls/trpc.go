package impls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	tnetlog "trpc.group/trpc-go/tnet/log"
	"trpc.group/trpc-go/trpc-go/client"
	trpclog "trpc.group/trpc-go/trpc-go/log"
	"trpc.group/trpc-go/trpc-go/pool/connpool"
	"trpc.group/trpc-go/trpc-go/server"
	"trpc.group/trpc-go/trpc-go/transport"

	"myrpc/benchmarks/trpcecho"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/services"
)

func init() {
	register(Impl{
		Name: "trpc",
		Kind: KindBaseline,
		Summary: "trpc-go with its default transport (tnet, its own epoll reactor) and the trpc protocol, serving the same `EchoRequest`/`EchoReply` messages. " +
			"Its client takes a connection from a pool for each call and puts it back after the reply: one connection per call in flight, dialled on demand, idle ones kept for reuse (up to 50 s).",
		NewServer: newTRPCServer,
		NewClient: newTRPCClient,
	})
}

// trpcLogOnce routes the logs of trpc-go and of tnet, which each keep one
// logger for the whole process, to the logger of the first trpc server or
// client made.
var trpcLogOnce sync.Once

func routeTRPCLogs(l *slog.Logger) {
	trpcLogOnce.Do(func() {
		trpclog.SetLogger(trpcLogger{l: l, from: "trpc-go"})
		tnetlog.Default = trpcLogger{l: l, from: "tnet"}
	})
}

// trpcLogger is a logger for trpc-go and tnet that drops their records below
// warning, which they write for every server, client and connection, and
// passes the others to l.
type trpcLogger struct {
	l    *slog.Logger
	from string
}

func (trpcLogger) Trace(...any)          {}
func (trpcLogger) Tracef(string, ...any) {}
func (trpcLogger) Debug(...any)          {}
func (trpcLogger) Debugf(string, ...any) {}
func (trpcLogger) Info(...any)           {}
func (trpcLogger) Infof(string, ...any)  {}

func (t trpcLogger) Warn(args ...any) { t.l.Warn(fmt.Sprint(args...), "from", t.from) }
func (t trpcLogger) Warnf(format string, args ...any) {
	t.l.Warn(fmt.Sprintf(format, args...), "from", t.from)
}
func (t trpcLogger) Error(args ...any) { t.l.Error(fmt.Sprint(args...), "from", t.from) }
func (t trpcLogger) Errorf(format string, args ...any) {
	t.l.Error(fmt.Sprintf(format, args...), "from", t.from)
}
func (t trpcLogger) Fatal(args ...any) { t.Error(args...) }
func (t trpcLogger) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
}

func (trpcLogger) Sync() error                            { return nil }
func (trpcLogger) SetLevel(string, trpclog.Level)         {}
func (trpcLogger) GetLevel(string) trpclog.Level          { return trpclog.LevelWarn }
func (t trpcLogger) With(...trpclog.Field) trpclog.Logger { return t }

// trpcServer serves trpcecho.Echo with a trpc-go service made by server.New
// on the listener Serve is given: trpc.NewServer would read trpc_go.yaml and
// start trpc-go's admin server and plugins. The network and the protocol it
// is given select trpc-go's default transport, tnet. server.New leaves
// server_async off (trpc_go.yaml's default turns it on): each connection's
// requests are handled in turn by the goroutine tnet gives the connection,
// which loses nothing here, as a pooled client sends one call at a time on a
// connection; server_async would hand each request to a goroutine pool that
// tnet's transport makes for every service and never releases.
type trpcServer struct {
	// stopListening ends the goroutine trpc-go's tnet transport starts to
	// close the listener on a signal that server.New never gives. Stop
	// closes it only once the service has closed the listener itself: tnet
	// takes the listener's descriptor out of its epoll set before it closes
	// the listener, and a descriptor closed first could be taken out after
	// a new socket got its number.
	stopListening chan struct{}
	// abort is cancelled when Stop stops waiting for the calls in flight:
	// it ends their delays.
	abort  context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // protects the fields below
	svc     server.Service
	lis     *trpcListener
	stopped bool
	active  int           // calls in flight
	idle    chan struct{} // closed when active falls to 0 after Stop
}

func newTRPCServer(o Options) (Server, error) {
	routeTRPCLogs(o.logger())
	abort, cancel := context.WithCancel(context.Background())
	return &trpcServer{stopListening: make(chan struct{}), abort: abort, cancel: cancel}, nil
}

// withStopListening gives the transport the channel that ends its
// listener's goroutine.
func withStopListening(ch <-chan struct{}) server.Option {
	return func(o *server.Options) {
		o.ServeOptions = append(o.ServeOptions, transport.WithStopListening(ch))
	}
}

// trpcListener is the listener a trpc service serves on: its Close closes
// it once and then tells Stop. It is a *net.TCPListener, as tnet needs.
type trpcListener struct {
	*net.TCPListener
	once   sync.Once
	err    error
	closed chan struct{}
}

func (l *trpcListener) Close() error {
	l.once.Do(func() {
		l.err = l.TCPListener.Close()
		close(l.closed)
	})
	return l.err
}

func (s *trpcServer) Serve(lis net.Listener) error {
	tl, ok := lis.(*net.TCPListener)
	if !ok {
		lis.Close()
		return fmt.Errorf("bench: trpc serves on TCP listeners, not %T", lis)
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return lis.Close()
	}
	s.lis = &trpcListener{TCPListener: tl, closed: make(chan struct{})}
	s.svc = server.New(append([]server.Option{
		server.WithServiceName(trpcecho.EchoServer_ServiceDesc.ServiceName),
		server.WithNetwork("tcp"),
		server.WithProtocol("trpc"),
		server.WithListener(s.lis),
		withStopListening(s.stopListening),
	}, trpcServerOptions...)...)
	svc := s.svc
	s.mu.Unlock()
	if err := svc.Register(&trpcecho.EchoServer_ServiceDesc, trpcEcho{s}); err != nil {
		lis.Close()
		return err
	}
	// Serve returns nil once Stop has closed the service.
	return svc.Serve()
}

// Stop waits until no call is in flight or ctx ends, then closes the service
// and waits, until ctx ends, for its transport to close every connection and
// the listener, which it does from a goroutine of its own. A reply that
// trpc-go is still writing as the last call returns may be cut.
func (s *trpcServer) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	svc, lis := s.svc, s.lis
	if s.active > 0 {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	defer s.cancel()
	if svc == nil {
		return nil
	}
	var err error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			err = ctx.Err()
			s.cancel()
		}
	}
	svc.Close(nil)
	select {
	case <-lis.closed:
		close(s.stopListening)
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
		go func() {
			<-lis.closed
			close(s.stopListening)
		}()
	}
	return err
}

func (s *trpcServer) begin() {
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
}

func (s *trpcServer) end() {
	s.mu.Lock()
	s.active--
	if s.active == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// trpcEcho serves trpcecho.Echo with the Echo implementation every myrpc
// stage serves, counting the calls in flight for Stop.
type trpcEcho struct{ s *trpcServer }

func (e trpcEcho) Echo(ctx context.Context, req *echo.EchoRequest) (*echo.EchoReply, error) {
	e.s.begin()
	defer e.s.end()
	if req.GetDelayMs() > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(e.s.abort, cancel)()
	}
	return services.Echo{}.Echo(ctx, req)
}

// errTRPCClientClosed is what a trpc client dials after Close.
var errTRPCClientClosed = errors.New("bench: the trpc client is closed")

// trpcClient calls through trpc-go's default client and transport with a
// connection pool of its own, made as tnet's default pool is, so that Close
// can close the connections it dialled: trpc-go's pools have no Close.
// MaxConns, when above 0, limits the connections in use at once; a call
// that finds every one in use waits for one until its deadline.
type trpcClient struct {
	proxy trpcecho.EchoClientProxy

	mu     sync.Mutex // protects conns and closed
	conns  map[net.Conn]struct{}
	closed bool
}

func newTRPCClient(addr string, o Options) (Client, error) {
	routeTRPCLogs(o.logger())
	c := &trpcClient{conns: map[net.Conn]struct{}{}}
	popts := []connpool.Option{
		connpool.WithDialFunc(c.dial),
		connpool.WithHealthChecker(trpcHealthChecker),
	}
	if o.MaxConns > 0 {
		popts = append(popts, connpool.WithMaxActive(o.MaxConns), connpool.WithWait(true))
	}
	c.proxy = trpcecho.NewEchoClientProxy(append([]client.Option{
		client.WithTarget("ip://" + addr),
		client.WithPool(connpool.NewConnectionPool(popts...)),
	}, trpcClientOptions...)...)
	return c, nil
}

// dial dials a connection as the transport's default pool does and keeps it
// for Close, forgetting the ones the pool has closed (tnet connections tell;
// net's are kept until Close).
func (c *trpcClient) dial(o *connpool.DialOptions) (net.Conn, error) {
	conn, err := trpcDial(o)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil, errTRPCClientClosed
	}
	for k := range c.conns {
		if a, ok := k.(interface{ IsActive() bool }); ok && !a.IsActive() {
			delete(c.conns, k)
		}
	}
	c.conns[conn] = struct{}{}
	return conn, nil
}

func (c *trpcClient) NewCaller() (Caller, error) { return trpcCaller{c.proxy}, nil }

// Close closes every connection the client dialled. The pool's goroutine,
// which checks its idle connections every 3 s, ends on its own once the
// pool has not been used for 100 s.
func (c *trpcClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for k := range c.conns {
		k.Close()
	}
	clear(c.conns)
	return nil
}

type trpcCaller struct{ proxy trpcecho.EchoClientProxy }

func (c trpcCaller) Call(ctx context.Context, payload []byte) error {
	return c.CallDelay(ctx, payload, 0)
}

func (c trpcCaller) CallDelay(ctx context.Context, payload []byte, delay time.Duration) error {
	reply, err := c.proxy.Echo(ctx, &echo.EchoRequest{Payload: payload, DelayMs: uint32(delay.Milliseconds())})
	if err != nil {
		return err
	}
	return checkEcho(payload, reply.GetPayload())
}

func (trpcCaller) Close() error { return nil }
