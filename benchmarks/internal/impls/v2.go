package impls

import (
	"myrpc/v2-pool-keepalive/client"
	"myrpc/v2-pool-keepalive/pool"
	"myrpc/v2-pool-keepalive/server"
)

func init() {
	register(Impl{
		Name: "v2",
		Kind: KindStage,
		Summary: "myrpc V2 (`v2-pool-keepalive`): long connections, a client connection pool (default limits: " +
			"256 connections), handlers on an ants goroutine pool. All callers share one `client.Client`; " +
			"each call borrows a pooled connection for its round trip.",
		NewServer: func(o Options) (Server, error) {
			return newStageServer(server.New(server.WithLogger(o.logger())), server.ErrServerClosed, o), nil
		},
		NewClient: func(addr string, o Options) (Client, error) {
			opts := []client.Option{client.WithLogger(o.logger())}
			if o.MaxConns > 0 {
				opts = append(opts, client.WithPool(pool.Config{MaxActive: o.MaxConns}))
			}
			c := client.New(addr, opts...)
			return newStageClient(c, c.Close), nil
		},
	})
}
