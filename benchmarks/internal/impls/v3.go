package impls

import (
	"myrpc/v3-async-mux/client"
	"myrpc/v3-async-mux/mux"
	"myrpc/v3-async-mux/server"
)

func init() {
	register(Impl{
		Name: "v3",
		Kind: KindStage,
		Summary: "myrpc V3 (`v3-async-mux`): many calls in flight on each connection, matched by sequence id; " +
			"a client opens up to 4 connections (a new one when every open one carries a call). " +
			"Server as in V2. All callers share one `client.Client`.",
		NewServer: func(o Options) (Server, error) {
			return newStageServer(server.New(server.WithLogger(o.logger())), server.ErrServerClosed, o), nil
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
