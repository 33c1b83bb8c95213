// Package client is the V3 client: an rpc.Invoker and rpc.AsyncInvoker
// that generated stubs call.
//
// Calls share a few connections to the server (package mux), many in
// flight on each, matched to their responses by sequence id. A call can be
// started without waiting for it (InvokeAsync), which returns a future
// (package async). A call may be retried, with exponential backoff, when
// that cannot run it twice behind its caller's back (RetryPolicy). The
// call's context deadline is sent to the server as timeout_ms and bounds
// every step on the client, retries included: the wait for a connection,
// the wait for another call's write to finish (a call that gives up there
// has sent nothing), and its own write. So every call ends with a reply, an
// error or its deadline, and InvokeAsync returns its future at once.
package client
