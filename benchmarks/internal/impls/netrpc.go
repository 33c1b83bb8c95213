package impls

import (
	"context"
	"errors"
	"net"
	"net/rpc"
	"sync"
	"time"
)

func init() {
	register(Impl{
		Name: "netrpc",
		Kind: KindBaseline,
		Summary: "Go's own `net/rpc` (gob encoding) echoing a struct with a `[]byte` payload. " +
			"All callers share one `*rpc.Client`: one connection, many calls in flight.",
		NewServer: newNetRPCServer,
		NewClient: newNetRPCClient,
	})
}

// NetRPCArgs is the net/rpc request: the payload to echo, and how long
// the server waits before it answers.
type NetRPCArgs struct {
	Payload []byte
	DelayMs uint32
}

// NetRPCReply is the net/rpc reply: the echoed payload.
type NetRPCReply struct{ Payload []byte }

// NetRPCEcho is the net/rpc Echo service.
type NetRPCEcho struct{}

// Echo replies with the request's payload.
func (NetRPCEcho) Echo(args *NetRPCArgs, reply *NetRPCReply) error {
	if args.DelayMs > 0 {
		time.Sleep(time.Duration(args.DelayMs) * time.Millisecond)
	}
	reply.Payload = args.Payload
	return nil
}

// netrpcMethod is the service method the client calls.
const netrpcMethod = "Echo.Echo"

type netrpcServer struct {
	rs *rpc.Server
	wg sync.WaitGroup

	// mu protects the fields below.
	mu     sync.Mutex
	lis    net.Listener
	conns  map[net.Conn]struct{}
	closed bool
}

func newNetRPCServer(Options) (Server, error) {
	rs := rpc.NewServer()
	if err := rs.RegisterName("Echo", NetRPCEcho{}); err != nil {
		return nil, err
	}
	return &netrpcServer{rs: rs, conns: make(map[net.Conn]struct{})}, nil
}

func (s *netrpcServer) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		lis.Close()
		return nil
	}
	s.lis = lis
	s.mu.Unlock()
	for {
		c, err := lis.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		if !s.track(c, true) {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.track(c, false)
			// ServeConn closes c when the client goes away.
			s.rs.ServeConn(c)
		}()
	}
}

// track adds or removes a connection; adding fails after Stop.
func (s *netrpcServer) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// Stop closes the listener and every connection: net/rpc has no graceful
// shutdown. The harness stops a server only after its callers are done.
func (s *netrpcServer) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.lis != nil {
		s.lis.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type netrpcClient struct{ c *rpc.Client }

func newNetRPCClient(addr string, _ Options) (Client, error) {
	c, err := rpc.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &netrpcClient{c: c}, nil
}

func (c *netrpcClient) NewCaller() (Caller, error) {
	return &netrpcCaller{c: c.c, done: make(chan *rpc.Call, 1)}, nil
}

func (c *netrpcClient) Close() error {
	if err := c.c.Close(); err != nil && !errors.Is(err, rpc.ErrShutdown) {
		return err
	}
	return nil
}

type netrpcCaller struct {
	c *rpc.Client
	// done receives this caller's finished calls. A call abandoned at its
	// deadline still arrives here later and is skipped.
	done chan *rpc.Call
	args NetRPCArgs
}

func (c *netrpcCaller) Call(ctx context.Context, payload []byte) error {
	return c.CallDelay(ctx, payload, 0)
}

func (c *netrpcCaller) CallDelay(ctx context.Context, payload []byte, delay time.Duration) error {
	c.args.Payload = payload
	c.args.DelayMs = uint32(delay.Milliseconds())
	reply := new(NetRPCReply)
	call := c.c.Go(netrpcMethod, &c.args, reply, c.done)
	for {
		select {
		case got := <-c.done:
			if got != call {
				continue // a late reply to an abandoned call
			}
			if got.Error != nil {
				return got.Error
			}
			return checkEcho(payload, reply.Payload)
		case <-ctx.Done():
			// net/rpc cannot cancel a call: it stays pending until its reply
			// arrives or the connection closes.
			c.done = make(chan *rpc.Call, 1)
			return ctx.Err()
		}
	}
}

func (c *netrpcCaller) Close() error { return nil }
