package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/ants/v2"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/v5-cluster/config"
	"myrpc/v5-cluster/poller"
	"myrpc/v5-cluster/registry"
)

// reactorByDefault says whether new servers use the epoll engine: where it
// exists. The unit tests of the goroutine-per-connection path clear it.
var reactorByDefault = poller.Supported

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close.
var ErrServerClosed = errors.New("rpc: server closed")

// Server serves registered services over TCP. Create it with New, register
// services (usually through generated Register functions), then call Serve
// or ListenAndServe. Its methods are safe for concurrent use.
type Server struct {
	opts options
	log  *slog.Logger

	// services is the routing table, replaced whole by Register.
	services atomic.Pointer[map[string]*service]
	// slots holds one token per connection being served (WithMaxConns); nil
	// when there is no cap.
	slots chan struct{}
	// closing is closed when Shutdown starts.
	closing chan struct{}
	// baseCtx is the parent of every handler's context; cancel ends it when
	// a Shutdown runs out of time.
	baseCtx context.Context
	cancel  context.CancelFunc
	// connID numbers the connections accepted, so it also counts them;
	// calls counts the requests handled (Stats).
	connID atomic.Uint64
	calls  atomic.Uint64

	// workers runs the handlers (WithWorkers). It starts with the first
	// Serve, so that a server never served starts no goroutines.
	workers     *ants.Pool
	workersOnce sync.Once
	// freeWorkers holds a token for each worker taken, so that a
	// connection's reader can wait for a free worker and watch its
	// connection at once; nil when the pool has no bound.
	freeWorkers chan struct{}
	// busyWorkers counts the workers taken for calls, and peakWorkers the
	// most there have been at once (Stats).
	busyWorkers, peakWorkers atomic.Int64

	// useReactor serves with the epoll engine (Linux) instead of a
	// goroutine per connection. engines are the engines serving, and
	// framesIn counts the frames they cut.
	useReactor   bool
	engines      []*poller.Engine
	framesIn     atomic.Uint64
	fallbackOnce sync.Once

	// mu protects the fields below, and serialises Register.
	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*conn]struct{}
	inShutdown bool
	// drained is closed once inShutdown is set and conns is empty.
	drained chan struct{}

	// interceptor is the chain of the interceptors (WithInterceptors),
	// nil when there are none.
	interceptor rpc.UnaryServerInterceptor

	// regMu protects regs, unlisted, registering and registered.
	regMu sync.Mutex
	// regs maps the registrations of the addresses served (WithRegistry)
	// to their addresses.
	regs map[*registry.Registration]string
	// unlisted is made when Shutdown starts taking the addresses out of
	// the registry, and closed when it has, and waited (unlist).
	unlisted chan struct{}
	// registering counts the registrations under way. registered is made
	// by a Shutdown that finds some, and closed when the last has ended:
	// no new one starts then.
	registering int
	registered  chan struct{}
}

// New returns a server with the options applied.
func New(opts ...Option) *Server {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:      o,
		log:       o.logger,
		closing:   make(chan struct{}),
		baseCtx:   ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		drained:   make(chan struct{}),

		regs: make(map[*registry.Registration]string),
	}
	if o.maxConns > 0 {
		s.slots = make(chan struct{}, o.maxConns)
	}
	if o.workers > 0 {
		s.freeWorkers = make(chan struct{}, o.workers)
	}
	if half := max(1, o.workers/2); o.workers > 0 && (o.maxConnCalls <= 0 || o.maxConnCalls > half) {
		// No connection may hold every worker.
		s.opts.maxConnCalls = half
	}
	s.services.Store(&map[string]*service{})
	s.useReactor = reactorByDefault
	if len(o.interceptors) > 0 {
		// The innermost turns a panic into its error, so that the
		// interceptors see the call end as its caller does.
		s.interceptor = rpc.ChainUnaryServer(append(slices.Clip(o.interceptors), s.recoverInterceptor)...)
	}
	return s
}

// ListenAndServe listens on every address named in the configuration
// (WithConfig) and serves each service on its own address; services that
// share an address share one listener. It blocks until Shutdown or Close and
// then returns ErrServerClosed. It returns the first listen error, or the
// first error that stops a listener, after closing the other listeners.
func (s *Server) ListenAndServe() error {
	addrs, names := (&config.Server{Services: s.opts.services}).Addresses()
	if len(addrs) == 0 {
		return errors.New("rpc: ListenAndServe: no service addresses configured")
	}
	lis := make([]net.Listener, 0, len(addrs))
	for _, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lis {
				l.Close()
			}
			return err
		}
		lis = append(lis, l)
	}
	errc := make(chan error, len(lis))
	for i, l := range lis {
		only := make(map[string]bool)
		for _, name := range names[addrs[i]] {
			only[name] = true
		}
		s.log.Info("rpc: listening", "addr", l.Addr().String(), "services", names[addrs[i]])
		go func() { errc <- s.serve(l, only) }()
	}
	// The first listener to stop for any reason but Shutdown stops the
	// others too: a server half of whose addresses are dead should say so.
	var first error
	for range lis {
		err := <-errc
		if first == nil || errors.Is(first, ErrServerClosed) {
			first = err
		}
		if !errors.Is(err, ErrServerClosed) {
			for _, l := range lis {
				l.Close()
			}
		}
	}
	return first
}

// Serve accepts connections on lis and serves every registered service on
// them. It blocks until Shutdown or Close, then returns ErrServerClosed; it
// returns any other error that stops the listener. Serve closes lis. A
// *net.TCPListener is served by the epoll engine on Linux; any other
// listener, with a goroutine per connection.
func (s *Server) Serve(lis net.Listener) error {
	return s.serve(lis, nil)
}

func (s *Server) serve(lis net.Listener, only map[string]bool) error {
	if !s.trackListener(lis, true) {
		lis.Close()
		return ErrServerClosed
	}
	defer s.trackListener(lis, false)
	defer lis.Close()
	unregister, err := s.register(lis, only)
	if err != nil {
		return err
	}
	defer unregister()
	s.workersOnce.Do(func() {
		// A size of 0 or less makes an unbounded pool. NewPool fails only
		// on bad options, and none are passed. The pool never blocks its
		// caller, since a reactor must not wait: the tokens of freeWorkers
		// bound the calls, and a reactor that finds none answers 14 at once
		// (see reactor.go). The pool has room for twice as many workers, so
		// that a worker that has given its token back, and is on its way
		// back to the pool, is never taken for a full pool.
		s.workers, _ = ants.NewPool(2*s.opts.workers, ants.WithNonblocking(true))
	})
	if _, tcp := lis.(*net.TCPListener); s.useReactor && tcp {
		return s.serveReactor(lis, only)
	}
	if !poller.Supported {
		s.fallbackOnce.Do(func() {
			s.log.Info("rpc: the epoll engine needs Linux; serving with a goroutine per connection, as V3 does")
		})
	}

	var backoff time.Duration
	failures := 0
	for {
		// Take a connection slot before accepting: at the cap, new
		// connections wait in the kernel's backlog.
		if !s.takeSlot() {
			return ErrServerClosed
		}
		nc, err := lis.Accept()
		if err != nil {
			s.releaseSlot()
			if s.shuttingDown() {
				return ErrServerClosed
			}
			if !isTemporary(err) {
				return err
			}
			// EMFILE and friends: wait, doubling from 5 ms up to 1 s. Only
			// the first failure of a streak is logged, so a long outage does
			// not flood the log.
			backoff = nextBackoff(backoff)
			failures++
			if failures == 1 {
				s.log.Warn("rpc: accept failed; backing off", "err", err, "delay", backoff)
			}
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		if failures > 0 {
			s.log.Info("rpc: accept recovered", "failures", failures)
			failures, backoff = 0, 0
		}
		// Tracked here, before its goroutine starts: a Shutdown that
		// begins before that goroutine runs still waits for the
		// connection and answers what it sent, rather than resetting it.
		c := s.newConn(nc, only)
		if !s.trackConn(c, true) {
			nc.Close()
			s.releaseSlot()
			return ErrServerClosed
		}
		go s.serveConn(c)
	}
}

// takeWorkerNow takes a worker's token if one is free, without waiting.
func (s *Server) takeWorkerNow() bool {
	if s.freeWorkers == nil {
		return true
	}
	select {
	case s.freeWorkers <- struct{}{}:
		return true
	default:
		return false
	}
}

// workerTaken counts a worker taken for a call, and keeps the most that
// have been busy at once.
func (s *Server) workerTaken() {
	n := s.busyWorkers.Add(1)
	for {
		peak := s.peakWorkers.Load()
		if n <= peak || s.peakWorkers.CompareAndSwap(peak, n) {
			return
		}
	}
}

// releaseWorker gives back the token of a worker whose call has ended.
func (s *Server) releaseWorker() {
	s.busyWorkers.Add(-1)
	if s.freeWorkers != nil {
		<-s.freeWorkers
	}
}

// busyMeta is the meta of the answer to a request that finds every worker
// busy: the pool never makes its caller wait (a reactor must not), so the
// request is refused unrun, and a client may send it again.
func busyMeta() *meta.ResponseMeta {
	return &meta.ResponseMeta{Code: uint32(codes.Unavailable), Message: "rpc: server busy; the request was not run"}
}

// takeSlot waits for a free connection slot; false means the server is
// shutting down.
func (s *Server) takeSlot() bool {
	if s.slots == nil {
		return !s.shuttingDown()
	}
	select {
	case s.slots <- struct{}{}:
		return true
	case <-s.closing:
		return false
	}
}

func (s *Server) releaseSlot() {
	if s.slots != nil {
		<-s.slots
	}
}

// nextBackoff doubles d, starting at 5 ms and stopping at 1 s, the steps
// net/http uses.
func nextBackoff(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return 5 * time.Millisecond
	case 2*d > time.Second:
		return time.Second
	default:
		return 2 * d
	}
}

// isTemporary reports whether an accept error is worth waiting out: running
// out of descriptors or memory, or a connection that died in the backlog.
func isTemporary(err error) bool {
	for _, e := range []error{
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN,
		syscall.EPROTO, syscall.EPERM,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Shutdown stops the server gracefully: it takes its addresses out of the
// registry and goes on serving for the deregister wait (WithRegistry),
// then closes the listeners, closes connections that are waiting for a
// request, answers requests that arrive from now on with code 14, and
// waits for calls in flight to finish. If ctx ends first, it closes every
// connection, cancels the handlers' contexts and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.unlist(ctx)
	s.mu.Lock()
	if !s.inShutdown {
		s.inShutdown = true
		close(s.closing)
		for l := range s.listeners {
			l.Close()
		}
		for c := range s.conns {
			c.wakeIfIdle()
		}
		if len(s.conns) == 0 {
			close(s.drained)
		}
	}
	engines := slices.Clone(s.engines)
	s.mu.Unlock()

	// The epoll engines drain their connections the same way, in parallel.
	engineErr := make(chan error, 1)
	go func() {
		var first error
		for _, e := range engines {
			if err := e.Shutdown(ctx); err != nil && !errors.Is(err, poller.ErrClosed) && first == nil {
				first = err
			}
		}
		engineErr <- first
	}()
	err := s.drainConns(ctx)
	if eerr := <-engineErr; err == nil {
		err = eerr
	}
	s.stop()
	return err
}

// drainConns waits for the connections served by goroutines to close, or
// closes them when ctx ends.
func (s *Server) drainConns(ctx context.Context) error {
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		// A ctx that had ended before the call makes both cases ready;
		// a server with nothing left to drain has still shut down cleanly.
		select {
		case <-s.drained:
			return nil
		default:
		}
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// stop ends what outlives the connections: the handlers' contexts and the
// worker pool.
func (s *Server) stop() {
	s.cancel()
	s.workersOnce.Do(func() {}) // no pool starts after this
	if s.workers != nil {
		s.workers.Release()
	}
}

// Close stops the server at once: as Shutdown with a context that has
// already ended.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (s *Server) shuttingDown() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// trackListener adds or removes a listener; adding fails once Shutdown has
// started.
func (s *Server) trackListener(l net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown {
			return false
		}
		s.listeners[l] = struct{}{}
	} else {
		delete(s.listeners, l)
	}
	return true
}

// trackConn adds or removes a connection; adding fails once Shutdown has
// started. Removing the last connection during Shutdown releases it.
func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown {
			return false
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	if s.inShutdown && len(s.conns) == 0 {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
	return true
}
