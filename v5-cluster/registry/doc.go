// Package registry keeps a service's servers in etcd and follows them
// there.
//
// A server registers its address under
// /myrpc/services/<service>/<addr>, the value being the address, in a
// lease that it keeps alive: a server that dies without a word is gone
// when its lease runs out, a few seconds later. If etcd is away for longer
// than the lease, the lease is lost; the server registers again, under a
// new lease, as soon as etcd is back.
//
// A Resolver (a resolver.Resolver) reads a service's addresses and then
// watches them from the next revision, handing the whole set to its
// caller on every change. If etcd cannot be reached it keeps the
// addresses it has, says so once in its log, and catches up when etcd is
// back; if etcd compacted away the changes it missed, it reads the whole
// set again. A Resolve that cannot reach etcd at all fails; the client
// tries it again in the background until it does.
package registry
