// Package client is the V4 client: V3's client, an rpc.Invoker and
// rpc.AsyncInvoker with futures, retries and multiplexed connections, with
// its requests batched: the frames of the calls on one connection are
// queued, and the connection's writer goroutine sends everything queued in
// one writev (package writev). A caller never writes, so it never waits for
// another call's write: its context alone bounds it.
package client
