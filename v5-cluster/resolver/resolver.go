// Package resolver finds the servers of a service: a Resolver turns a
// service's name into the addresses of its servers, and follows them as
// servers come and go. The client balances its calls over what the
// resolver gives it.
package resolver

import (
	"errors"
	"io"
	"slices"
)

// Resolver finds and follows the addresses of a service's servers.
type Resolver interface {
	// Resolve starts following service's addresses. update receives the
	// whole current set of addresses: first as soon as it is known, then
	// after each change, never from two goroutines at once. Closing the
	// returned Closer stops the updates; none runs after Close returns.
	// An error that wraps ErrNoAddrs or ErrBadName says the service
	// cannot be resolved as it is named; any other (the registry out of
	// reach, say) may pass, and the client tries again.
	Resolve(service string, update func(addrs []string)) (io.Closer, error)
}

// ErrBadName is wrapped by the error of a Resolve given a name the
// resolver cannot take.
var ErrBadName = errors.New("bad service name or address")

// Static returns a Resolver that gives every service the same fixed
// addresses, once.
func Static(addrs ...string) Resolver { return static(slices.Clone(addrs)) }

type static []string

// ErrNoAddrs is returned by a static resolver given no address.
var ErrNoAddrs = errors.New("resolver: no address")

func (s static) Resolve(service string, update func([]string)) (io.Closer, error) {
	if len(s) == 0 {
		return nil, ErrNoAddrs
	}
	update(slices.Clone([]string(s)))
	return io.NopCloser(nil), nil
}
