// Package interceptor holds the interceptors V5 ships, for the server
// (server.WithInterceptors) and the client (client.WithInterceptors):
//
//   - ServerLogging and ClientLogging log every call with log/slog: its
//     method, status code and duration; at Debug for a call that
//     succeeded, at Warn for one that failed.
//   - ServerMetrics and ClientMetrics count calls per method, errors per
//     method and code, and observe latency in histograms, with
//     Prometheus' client_golang, on a prometheus.Registerer of the
//     caller's; ServeMetrics serves what a prometheus.Gatherer holds on
//     an HTTP address, at /metrics.
//
// Put them outermost (first) to see every call as its caller does: a
// server's interceptors run after the request has been decoded, so a
// request that does not decode (code 3) never reaches them, nor does a
// request the server refuses before it runs a handler (an unknown method,
// a frame over the limits, a request during shutdown). A client's see
// every call, its retries included, as one.
package interceptor
