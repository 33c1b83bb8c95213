// Package client is the V1 client: an rpc.Invoker that generated stubs call.
//
// V1 keeps the blog's short connection: every call dials the server, writes
// one request frame, reads one response frame and closes the connection.
// The call's context deadline is sent to the server as timeout_ms and bounds
// every step on the client, so every call ends with a reply, an error or its
// deadline.
package client
