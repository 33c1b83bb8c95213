package impls

import (
	"myrpc/v1-basic/client"
	"myrpc/v1-basic/server"
)

func init() {
	register(Impl{
		Name: "v1",
		Kind: KindStage,
		Summary: "myrpc V1 (`v1-basic`): one short TCP connection per call, one goroutine per connection. " +
			"All callers share one `client.Client`, which dials, writes, reads and closes for every call.",
		NewServer: func(o Options) (Server, error) {
			return newStageServer(server.New(server.WithLogger(o.logger())), server.ErrServerClosed, o), nil
		},
		NewClient: func(addr string, o Options) (Client, error) {
			c := client.New(addr, client.WithLogger(o.logger()))
			return newStageClient(c, c.Close), nil
		},
	})
}
