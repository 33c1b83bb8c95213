package impls

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"myrpc/benchmarks/grpcecho"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/services"
)

func init() {
	register(Impl{
		Name: "grpc",
		Kind: KindBaseline,
		Summary: "grpc-go with its default settings, serving the same `EchoRequest`/`EchoReply` messages. " +
			"All callers share one `grpc.ClientConn`: one HTTP/2 connection, many streams in flight.",
		NewServer: newGRPCServer,
		NewClient: newGRPCClient,
	})
}

// grpcEcho serves grpcecho.Echo with the Echo implementation every myrpc
// stage serves.
type grpcEcho struct {
	grpcecho.UnimplementedEchoServer
}

func (grpcEcho) Echo(ctx context.Context, req *echo.EchoRequest) (*echo.EchoReply, error) {
	return services.Echo{}.Echo(ctx, req)
}

type grpcServer struct{ s *grpc.Server }

func newGRPCServer(Options) (Server, error) {
	s := grpc.NewServer()
	grpcecho.RegisterEchoServer(s, grpcEcho{})
	return &grpcServer{s: s}, nil
}

func (s *grpcServer) Serve(lis net.Listener) error { return s.s.Serve(lis) }

func (s *grpcServer) Stop(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.s.Stop()
		<-done
		return ctx.Err()
	}
}

type grpcClient struct {
	cc *grpc.ClientConn
	ec grpcecho.EchoClient
}

func newGRPCClient(addr string, _ Options) (Client, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &grpcClient{cc: cc, ec: grpcecho.NewEchoClient(cc)}, nil
}

func (c *grpcClient) NewCaller() (Caller, error) { return grpcCaller{c.ec}, nil }

func (c *grpcClient) Close() error { return c.cc.Close() }

type grpcCaller struct{ ec grpcecho.EchoClient }

func (c grpcCaller) Call(ctx context.Context, payload []byte) error {
	return c.CallDelay(ctx, payload, 0)
}

func (c grpcCaller) CallDelay(ctx context.Context, payload []byte, delay time.Duration) error {
	reply, err := c.ec.Echo(ctx, &echo.EchoRequest{Payload: payload, DelayMs: uint32(delay.Milliseconds())})
	if err != nil {
		return err
	}
	return checkEcho(payload, reply.GetPayload())
}

func (grpcCaller) Close() error { return nil }
