package impls

import (
	"myrpc/v4-epoll-batch/client"
	"myrpc/v4-epoll-batch/mux"
	"myrpc/v4-epoll-batch/server"
)

func init() {
	register(Impl{
		Name: "v4",
		Kind: KindStage,
		Summary: "myrpc V4 (`v4-epoll-batch`): the server reads every connection from epoll reactors, " +
			"without a goroutine per connection, and writes queued responses with one writev; " +
			"the client is V3's, its requests batched the same way. All callers share one `client.Client`.",
		NewServer: func(o Options) (Server, error) {
			s := server.New(server.WithLogger(o.logger()))
			return &countingServer{Server: newStageServer(s, server.ErrServerClosed, o), stats: s.Stats}, nil
		},
		NewClient: func(addr string, o Options) (Client, error) {
			opts := []client.Option{client.WithLogger(o.logger())}
			if o.MaxConns > 0 {
				opts = append(opts, client.WithMux(mux.Config{MaxConns: o.MaxConns}))
			}
			c := client.New(addr, opts...)
			return newStageClient(c, c.Close), nil
		},
	})
}

// countingServer is a stage server that reports its counters (frames per
// write system call) to the benchmark.
type countingServer struct {
	Server
	stats func() map[string]float64
}

func (s *countingServer) Stats() map[string]float64 { return s.stats() }
