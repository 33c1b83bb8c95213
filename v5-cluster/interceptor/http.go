package interceptor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsServer serves metrics over HTTP at /metrics; ServeMetrics starts
// one.
type MetricsServer struct {
	lis    net.Listener
	srv    *http.Server
	served chan struct{}
}

// ServeMetrics listens on addr (host:port; port 0 picks a free one) and
// serves what g gathers at /metrics, in Prometheus' text format, on a
// goroutine of its own, until Close. g is usually the prometheus.Registry
// that NewServerMetrics and NewClientMetrics registered on. Errors of the
// HTTP server are logged on log (nil: slog.Default()).
func ServeMetrics(addr string, g prometheus.Gatherer, log *slog.Logger) (*MetricsServer, error) {
	log = orDefault(log)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}}))
	m := &MetricsServer{
		lis:    lis,
		srv:    &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		served: make(chan struct{}),
	}
	go func() {
		defer close(m.served)
		if err := m.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("interceptor: the metrics server stopped", "addr", lis.Addr().String(), "err", err)
		}
	}()
	return m, nil
}

// Addr returns the address the metrics are served on.
func (m *MetricsServer) Addr() string { return m.lis.Addr().String() }

// Close stops serving: it waits up to 5 s for scrapes in progress, then
// closes their connections, and returns once the server's goroutine has
// ended.
func (m *MetricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if err != nil {
		err = m.srv.Close()
	}
	<-m.served
	return err
}

// slogPrinter is promhttp's error log, written to a slog.Logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Error("interceptor: serving metrics", "err", fmt.Sprint(v...))
}
