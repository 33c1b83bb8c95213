// Package client is the V4 client: V3's client, an rpc.Invoker and
// rpc.AsyncInvoker with futures, retries and multiplexed connections, with
// its requests batched: the frames of the calls on one connection are
// queued, and whichever caller finds no write in progress sends them all
// in one writev (package writev).
package client
