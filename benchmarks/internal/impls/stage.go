package impls

import (
	"context"
	"errors"
	"net"
	"time"

	"myrpc/benchmarks/internal/faultsvc"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/services"
)

// stageServer is what the server of every myrpc stage offers.
type stageServer interface {
	rpc.ServiceRegistrar
	Serve(lis net.Listener) error
	Shutdown(ctx context.Context) error
}

// newStageServer registers the Echo service every stage serves with s (its
// handler waiting o.Delay first, if set), and with o.Faults the faultsvc
// service, and returns it as a Server. errClosed is what the stage's Serve
// returns after Shutdown.
func newStageServer(s stageServer, errClosed error, o Options) Server {
	if o.Delay > 0 {
		echo.RegisterEchoServer(s, slowEcho{o.Delay})
	} else {
		echo.RegisterEchoServer(s, services.Echo{})
	}
	if o.Faults {
		faultsvc.Register(s)
	}
	return &stageSrv{s: s, errClosed: errClosed}
}

// SlowMarkKey is the response metadata key by which a server started with
// Options.Delay marks its answers, on a stage that sends response metadata
// (V5 on): the cluster scenario tells the slow server's calls from the
// others' by it.
const SlowMarkKey = "bench-slow"

// slowEcho is services.Echo after a wait of d. Its answers carry
// SlowMarkKey where the stage sends response metadata.
type slowEcho struct{ d time.Duration }

func (e slowEcho) Echo(ctx context.Context, req *echo.EchoRequest) (*echo.EchoReply, error) {
	// V1 to V4 send no response metadata: SetTrailer fails, and the
	// scenarios that use them do not ask.
	_ = rpc.SetTrailer(ctx, rpc.Metadata{SlowMarkKey: "1"})
	t := time.NewTimer(e.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return services.Echo{}.Echo(ctx, req)
}

type stageSrv struct {
	s         stageServer
	errClosed error
}

func (s *stageSrv) Serve(lis net.Listener) error {
	if err := s.s.Serve(lis); !errors.Is(err, s.errClosed) {
		return err
	}
	return nil
}

func (s *stageSrv) Stop(ctx context.Context) error { return s.s.Shutdown(ctx) }

// newStageClient returns a Client whose callers all share inv, the client
// of a myrpc stage, through the generated Echo stub; closeFn closes inv.
func newStageClient(inv rpc.Invoker, closeFn func() error) Client {
	return &stageClient{ec: echo.NewEchoClient(inv), closeFn: closeFn, inv: inv}
}

type stageClient struct {
	ec      echo.EchoClient
	closeFn func() error

	inv rpc.Invoker
}

func (c *stageClient) Invoker() rpc.Invoker { return c.inv }

func (c *stageClient) NewCaller() (Caller, error) { return stageCaller{c.ec}, nil }

func (c *stageClient) Close() error { return c.closeFn() }

type stageCaller struct{ ec echo.EchoClient }

func (c stageCaller) Call(ctx context.Context, payload []byte) error {
	return c.CallDelay(ctx, payload, 0)
}

func (c stageCaller) CallDelay(ctx context.Context, payload []byte, delay time.Duration) error {
	reply, err := c.ec.Echo(ctx, &echo.EchoRequest{Payload: payload, DelayMs: uint32(delay.Milliseconds())})
	if err != nil {
		return err
	}
	return checkEcho(payload, reply.GetPayload())
}

func (stageCaller) Close() error { return nil }

// markedCaller is a stageCaller that reads the response metadata of each
// call, for a stage that sends it, and so can tell which calls a slow
// server answered.
type markedCaller struct{ stageCaller }

func (c markedCaller) CallMarked(ctx context.Context, payload []byte) (bool, error) {
	var md rpc.Metadata
	reply, err := c.ec.Echo(ctx, &echo.EchoRequest{Payload: payload}, rpc.Trailer(&md))
	if err != nil {
		return false, err
	}
	return md[SlowMarkKey] != "", checkEcho(payload, reply.GetPayload())
}

// markedClient is a stageClient whose callers are markedCallers.
type markedClient struct{ *stageClient }

// newMarkedClient is newStageClient for a stage that sends response
// metadata: its callers are MarkedCallers.
func newMarkedClient(inv rpc.Invoker, closeFn func() error) Client {
	return markedClient{&stageClient{ec: echo.NewEchoClient(inv), closeFn: closeFn, inv: inv}}
}

func (c markedClient) NewCaller() (Caller, error) { return markedCaller{stageCaller{c.ec}}, nil }
