package impls

import (
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/mux"
	"myrpc/v5-cluster/resolver"
	"myrpc/v5-cluster/server"
)

func init() {
	register(Impl{
		Name: "v5",
		Kind: KindStage,
		Summary: "myrpc V5 (`v5-cluster`): V4's server and client with the interceptor chains and response metadata, " +
			"here with no interceptor, one server and a `host:port` target, so that the table shows what the stage " +
			"costs a call that uses none of it. All callers share one `client.Client`.",
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
		NewClusterClient: func(addrs []string, policy string, o Options) (Client, error) {
			opts := []client.Option{client.WithLogger(o.logger()), client.WithBalancer(policy),
				client.WithResolver(resolver.Static(addrs...))}
			if o.MaxConns > 0 {
				opts = append(opts, client.WithMux(mux.Config{MaxConns: o.MaxConns}))
			}
			c := client.New("static:///bench", opts...)
			return newMarkedClient(c, c.Close), nil
		},
	})
}
