package interceptor

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
)

// DefaultBuckets are the latency histograms' bucket bounds, in seconds,
// from 100 µs to 10 s: an RPC on a local network takes well under a
// millisecond, and Prometheus' own default starts at 5 ms.
var DefaultBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// metrics are the collectors of one side, server or client.
type metrics struct {
	calls   *prometheus.CounterVec
	errors  *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// newMetrics makes the collectors of one side and registers them on reg.
func newMetrics(reg prometheus.Registerer, side, what string, buckets []float64) (*metrics, error) {
	if len(buckets) == 0 {
		buckets = DefaultBuckets
	}
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "myrpc", Subsystem: side, Name: "calls_total",
			Help: "Calls " + what + ", by method.",
		}, []string{"method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "myrpc", Subsystem: side, Name: "errors_total",
			Help: "Calls " + what + " that failed, by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "myrpc", Subsystem: side, Name: "latency_seconds",
			Help:    "Time taken by the calls " + what + ", by method, in seconds.",
			Buckets: buckets,
		}, []string{"method"}),
	}
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{m.calls, m.errors, m.latency} {
		if err := reg.Register(c); err != nil {
			// Undo what this call registered, and only that (Unregister
			// goes by description: it would also take out the same
			// metrics registered before), so that a failed call leaves
			// reg as it was.
			for _, r := range done {
				reg.Unregister(r)
			}
			return nil, err
		}
		done = append(done, c)
	}
	return m, nil
}

// observe counts one call that ended with err after d.
func (m *metrics) observe(method string, err error, d time.Duration) {
	m.calls.WithLabelValues(method).Inc()
	if code := status.Code(err); code != codes.OK {
		m.errors.WithLabelValues(method, code.String()).Inc()
	}
	m.latency.WithLabelValues(method).Observe(d.Seconds())
}

// ServerMetrics holds a server's metrics: myrpc_server_calls_total{method},
// myrpc_server_errors_total{method,code} (the calls that failed, by the
// name of their status code, e.g. "NotFound") and the histogram
// myrpc_server_latency_seconds{method}, the time from the decoded request
// to the reply. method is the full method name, "/service/method".
type ServerMetrics struct {
	m *metrics
}

// NewServerMetrics makes a server's metrics and registers them on reg, a
// prometheus.Registry of the caller's (prometheus.DefaultRegisterer serves
// too). buckets, if given, replace DefaultBuckets. It fails if reg already
// holds metrics of the same names.
func NewServerMetrics(reg prometheus.Registerer, buckets ...float64) (*ServerMetrics, error) {
	if reg == nil {
		return nil, errors.New("interceptor: NewServerMetrics: nil Registerer")
	}
	m, err := newMetrics(reg, "server", "handled", buckets)
	if err != nil {
		return nil, err
	}
	return &ServerMetrics{m: m}, nil
}

// Interceptor returns the server interceptor that records every call.
func (s *ServerMetrics) Interceptor() rpc.UnaryServerInterceptor {
	return func(ctx context.Context, req proto.Message, info *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (proto.Message, error) {
		start := time.Now()
		reply, err := handler(ctx, req)
		s.m.observe(info.FullMethod, err, time.Since(start))
		return reply, err
	}
}

// ClientMetrics holds a client's metrics, named as ServerMetrics' with
// "client" for "server": myrpc_client_calls_total{method},
// myrpc_client_errors_total{method,code} and
// myrpc_client_latency_seconds{method}, each call counted once, its
// retries included.
type ClientMetrics struct {
	m *metrics
}

// NewClientMetrics makes a client's metrics and registers them on reg, as
// NewServerMetrics does. A server and a client may share a registry.
func NewClientMetrics(reg prometheus.Registerer, buckets ...float64) (*ClientMetrics, error) {
	if reg == nil {
		return nil, errors.New("interceptor: NewClientMetrics: nil Registerer")
	}
	m, err := newMetrics(reg, "client", "made", buckets)
	if err != nil {
		return nil, err
	}
	return &ClientMetrics{m: m}, nil
}

// Interceptor returns the client interceptor that records every call.
func (c *ClientMetrics) Interceptor() rpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply proto.Message, cc rpc.Invoker, invoker rpc.UnaryInvoker, opts ...rpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, opts...)
		c.m.observe(method, err, time.Since(start))
		return err
	}
}
