package registry

import (
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// NewClient returns an etcd client of endpoints (host:port) made for
// Register and NewResolver: it tries a lost etcd again at least every
// half second, so that it is back within a moment of etcd (gRPC's own
// backoff grows to two minutes); it pings etcd every 10 s while it has a
// stream open, so that a connection that died without a word is seen
// within 15 s; and its own log is silent, the registry saying what
// matters.
func NewClient(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  50 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   500 * time.Millisecond,
			},
			MinConnectTimeout: 5 * time.Second,
		})},
	})
}
