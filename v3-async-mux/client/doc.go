// Package client is the V3 client: an rpc.Invoker and rpc.AsyncInvoker
// that generated stubs call.
//
// Calls share a few connections to the server (package mux), many in
// flight on each, matched to their responses by sequence id. A call can be
// started without waiting for it (InvokeAsync), which returns a future
// (package async). A call may be retried, with exponential backoff, when
// that cannot run it twice behind its caller's back (RetryPolicy). The
// call's context deadline is sent to the server as timeout_ms, and on the
// client it bounds each wait of the call, retries included: the wait for a
// connection or a free stream; the wait for the connection's write token,
// which one call at a time holds while it writes its frame (a call that
// gives up there, at its deadline or cancellation, has sent nothing); and
// its own write, which is cut short at the deadline or when the context is
// cancelled (the connection then sends no more, its stream out of step).
// Encoding the request is work, not a wait: Invoke does it on the caller's
// goroutine, and InvokeAsync returns its future at once and encodes and
// sends on a goroutine of its own. So every call ends with a reply, an
// error or its deadline.
package client
