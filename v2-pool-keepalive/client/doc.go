// Package client is the V2 client: an rpc.Invoker that generated stubs call.
//
// Connections outlive calls: a call borrows a connection from the client's
// pool (package pool), writes one request frame, reads one response frame
// and gives the connection back; one that saw an error is closed instead.
// The call's context deadline is sent to the server as timeout_ms and bounds
// every step on the client, including the wait for a free connection, so
// every call ends with a reply, an error or its deadline.
package client
