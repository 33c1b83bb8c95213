package server

import (
	"context"
	"fmt"
	"maps"
	"net"
	"strings"
	"time"

	"myrpc/v5-cluster/registry"
)

// registerTimeout bounds the first registration of an address in etcd,
// and the removal of the key of a listener that stopped serving on its
// own.
const registerTimeout = 5 * time.Second

// deregisterTimeout bounds Shutdown's removal of each key: with etcd
// unreachable, the etcd client would wait for it as long as Shutdown's
// context lets it, and leave no time to drain. The key then goes when its
// lease ends.
const deregisterTimeout = time.Second

// register puts the address of lis in the registry (WithRegistry), when
// there is one, and returns a function that takes it out again when lis
// stops serving. An address that cannot be registered fails Serve: a
// server no client can find should say so. A listener that serves only
// some services (only, from ListenAndServe) is not listed under the name
// of a service it leaves out.
func (s *Server) register(lis net.Listener, only map[string]bool) (unregister func(), err error) {
	o := &s.opts
	if o.registry == nil || s.servesOther(only) {
		return func() {}, nil
	}
	addr, err := advertised(lis.Addr(), o.advertiseAddr)
	if err != nil {
		return nil, err
	}
	s.regMu.Lock()
	if s.unlisted != nil {
		// Shutdown has started: no client is to find the server now.
		s.regMu.Unlock()
		return func() {}, nil
	}
	s.registering++
	s.regMu.Unlock()
	ctx, cancel := context.WithTimeout(s.baseCtx, registerTimeout)
	defer cancel()
	reg, err := registry.Register(ctx, o.registry, o.registryService, addr, o.registryTTL, registry.WithLogger(s.log))
	s.regMu.Lock()
	if err == nil {
		s.regs[reg] = addr
	}
	shutdown := s.unlisted != nil
	s.registering--
	if s.registering == 0 && s.registered != nil {
		close(s.registered)
		s.registered = nil
	}
	s.regMu.Unlock()
	if err != nil {
		if shutdown {
			// Close cut the registration short.
			return func() {}, nil
		}
		return nil, fmt.Errorf("rpc: %w", err)
	}
	s.log.Info("rpc: registered", "service", o.registryService, "addr", addr, "ttl", o.registryTTL)
	return func() {
		s.regMu.Lock()
		delete(s.regs, reg)
		unlisted := s.unlisted != nil
		s.regMu.Unlock()
		// After Shutdown's removal this returns at once, with its error,
		// which Shutdown has logged. It removes a key that Shutdown did
		// not wait for: one that a Close found still being registered.
		ctx, cancel := context.WithTimeout(context.Background(), registerTimeout)
		defer cancel()
		if err := reg.Deregister(ctx); err != nil && !unlisted {
			s.log.Warn("rpc: deregister failed; the key goes when its lease ends", "addr", addr, "err", err)
		}
	}, nil
}

// unlist takes the server's addresses out of the registry, then goes on
// serving for the deregister wait (WithDeregisterWait), or until ctx ends,
// so that the clients watching the registry stop picking this server
// before it stops accepting. A server that registered nothing returns at
// once. Every Shutdown waits for the first one's unlist.
func (s *Server) unlist(ctx context.Context) {
	s.regMu.Lock()
	done := s.unlisted
	if done != nil {
		s.regMu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
		return
	}
	done = make(chan struct{})
	s.unlisted = done
	// A registration under way is waited for, and taken out with the
	// others. (Cut short, its key could be in etcd without the server
	// knowing, until its lease ended.) The wait is on a channel, not on
	// a goroutine of its own, so that nothing of it outlives a Shutdown
	// whose context ended first.
	var registered chan struct{}
	if s.registering > 0 {
		registered = make(chan struct{})
		s.registered = registered
	}
	s.regMu.Unlock()
	defer close(done)
	if registered != nil {
		select {
		case <-registered:
		case <-ctx.Done():
		}
	}
	s.regMu.Lock()
	regs := maps.Clone(s.regs)
	s.regMu.Unlock()

	if len(regs) == 0 {
		return
	}
	closing := ctx.Err() != nil // Close: no time for etcd
	removed := 0
	for reg, addr := range regs {
		dctx, cancel := context.WithTimeout(ctx, deregisterTimeout)
		err := reg.Deregister(dctx)
		cancel()
		if err != nil {
			if !closing {
				s.log.Warn("rpc: deregister failed; the key goes when its lease ends", "addr", addr, "err", err)
			}
			continue
		}
		removed++
		s.log.Info("rpc: deregistered", "service", s.opts.registryService, "addr", addr)
	}
	if s.opts.deregisterWait <= 0 || removed == 0 {
		// With no key removed, clients still list the server: waiting
		// would only take time from the drain.
		return
	}
	s.log.Info("rpc: serving while clients see the server gone", "wait", s.opts.deregisterWait)
	t := time.NewTimer(s.opts.deregisterWait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// servesOther reports whether a listener limited to the services only
// leaves out the registry's service, when that names a registered
// service: clients that resolve it are not to find the listener. A
// registry name that is no service's (a name for the whole server) lists
// every listener.
func (s *Server) servesOther(only map[string]bool) bool {
	if only == nil || only[s.opts.registryService] {
		return false
	}
	if m := s.services.Load(); m != nil {
		_, isService := (*m)[s.opts.registryService]
		return isService
	}
	return false
}

// advertised returns the address to register for a listener at lisAddr:
// adv when it is host:port, adv's host with the listener's port when it is
// a host alone, else the listener's own address, which must then name a
// host that clients can dial.
func advertised(lisAddr net.Addr, adv string) (string, error) {
	addr := lisAddr.String()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("rpc: register %s: %w", addr, err)
	}
	if adv != "" {
		if h, p, err := net.SplitHostPort(adv); err == nil {
			if h == "" || p == "" {
				return "", fmt.Errorf("rpc: register: advertised address %q lacks a host or a port", adv)
			}
			return net.JoinHostPort(h, p), nil
		}
		return net.JoinHostPort(strings.Trim(adv, "[]"), port), nil
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return "", fmt.Errorf("rpc: register %s: not an address clients can dial; set WithAdvertiseAddr", addr)
	}
	return addr, nil
}
