// Package client is the V4 client: V3's client, an rpc.Invoker and
// rpc.AsyncInvoker with futures, retries and multiplexed connections, with
// its requests batched: the frames of the calls on one connection are
// queued, and the connection's writer goroutine sends everything queued in
// one writev (package writev). A caller never waits for another call's
// write: its context alone bounds its wait for the reply, retries
// included. (A call alone on its connection writes its own frame, with a
// write that never waits; what the socket does not take, the writer
// sends; and a synchronous call alone on its connection reads its own
// response, where the connection's reader goroutine would have had to
// wake it.) A write carries many calls' frames, so no one call's
// deadline or cancellation cuts it short; the writer bounds it by the
// latest deadline of the calls it carries (no bound if one of them has
// none), past which nobody waits for it. InvokeAsync returns its future at
// once and encodes the request on a goroutine of its own.
//
// A client calls one service, on however many servers: New takes a
// host:port, or scheme:///name with a resolver (WithResolver) that gives
// the servers' addresses and their changes. Each server is an endpoint of
// the balancer (package balancer), with multiplexed connections of its
// own, and each call's endpoint is picked by power of two choices on the
// calls in flight, or round-robin (WithBalancer). An endpoint whose
// connections fail is ejected for a while. A request no server ran goes
// to another server at once, whatever the retry policy: one whose dial
// failed, one a server closed the connection without reading, one a
// draining server refused with the not-run mark (rpc.NotRunKey).
//
// Interceptors (WithInterceptors) run around every call, as grpc-go's
// unary client interceptors do, and the rpc.Trailer call option receives
// the metadata the server's handler set for its response (rpc.SetTrailer),
// without the connection: close mark, which only tells the client to send
// nothing more on that connection.
package client
