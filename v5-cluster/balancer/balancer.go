// Package balancer spreads a client's calls over the servers of a service.
// A Balancer holds one Endpoint per server address, each with its own
// multiplexed connections (a mux.Group), and picks the endpoint of each
// call by its policy: power of two choices on the calls in flight (P2C,
// the default), or round-robin. An endpoint whose connections fail is
// ejected for a back-off, and picked again when it ends. The set of
// addresses comes from a resolver, through Update: a new address becomes
// an endpoint at once; a removed one takes no new call, and its
// connections close when its calls in flight have ended.
package balancer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"myrpc/v5-cluster/mux"
)

// The policies a Balancer picks endpoints by.
const (
	// P2C, power of two choices: two endpoints at random, and of the two
	// the one with fewer calls in flight.
	P2C = "p2c"
	// RoundRobin takes the endpoints in turn.
	RoundRobin = "round_robin"
)

// ErrClosed is returned by Pick after Close.
var ErrClosed = errors.New("rpc: balancer closed")

// ErrNoEndpoints is wrapped by the error of a Pick made while the latest
// update held no address.
var ErrNoEndpoints = errors.New("rpc: no server address")

// ErrAllTried is returned by Pick when every endpoint is in the list of
// those the call has tried already.
var ErrAllTried = errors.New("rpc: every server address has been tried")

// Config sets a Balancer's policy, its ejection back-off and the
// connections of its endpoints. A zero field means its default. Ejections
// are logged at Info to Mux.Logger.
type Config struct {
	// Policy is P2C or RoundRobin. Default: P2C.
	Policy string
	// EjectBase is the first ejection of an endpoint whose connections
	// fail; each failure in a row doubles it, up to EjectMax. Each is
	// spread at random by up to a fifth either way, so that clients that
	// saw a server fail together do not come back together; EjectMax
	// bounds the result. Default: 1 s and 30 s.
	EjectBase, EjectMax time.Duration
	// Mux sets the limits of each endpoint's connections, and how they are
	// dialled; see mux.Config.
	Mux mux.Config
}

// CheckPolicy returns an error unless policy names a policy; "" is the
// default.
func CheckPolicy(policy string) error {
	switch policy {
	case "", P2C, RoundRobin:
		return nil
	}
	return fmt.Errorf("balancer: unknown policy %q, want %q or %q", policy, P2C, RoundRobin)
}

func (c Config) withDefaults() Config {
	if c.Policy == "" {
		c.Policy = P2C
	}
	if c.EjectBase <= 0 {
		c.EjectBase = time.Second
	}
	if c.EjectMax <= 0 {
		c.EjectMax = 30 * time.Second
	}
	c.EjectMax = max(c.EjectMax, c.EjectBase)
	return c
}

// Balancer picks the endpoint of each call. It is safe for concurrent use.
type Balancer struct {
	cfg Config
	log *slog.Logger
	// eps is the current set of endpoints, replaced whole by Update: Pick
	// reads it without a lock.
	eps atomic.Pointer[[]*Endpoint]
	// next is the round-robin counter.
	next atomic.Uint64
	// ready is closed by the first Update, or by Close.
	ready chan struct{}
	// open counts the endpoints whose connections have not closed.
	open sync.WaitGroup

	// mu protects the fields below, and orders Updates and Close.
	mu     sync.Mutex
	closed bool
	// gone holds the removed endpoints whose calls have not all ended.
	gone map[*Endpoint]bool
	// dropped keeps the count of the responses no call waited for on
	// connections that have closed.
	dropped uint64
}

// New returns a balancer with no endpoint: Pick waits for the first
// Update.
func New(cfg Config) *Balancer {
	cfg = cfg.withDefaults()
	log := cfg.Mux.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Balancer{cfg: cfg, log: log, ready: make(chan struct{}), gone: make(map[*Endpoint]bool)}
}

// Update replaces the set of addresses. A new address becomes an endpoint;
// an endpoint whose address is gone takes no new call, and closes its
// connections when its calls in flight have ended. Duplicates count once.
func (b *Balancer) Update(addrs []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	old := make(map[string]*Endpoint)
	if p := b.eps.Load(); p != nil {
		for _, e := range *p {
			old[e.addr] = e
		}
	}
	eps := make([]*Endpoint, 0, len(addrs))
	kept := make(map[string]bool, len(addrs))
	for _, addr := range addrs {
		if kept[addr] {
			continue
		}
		kept[addr] = true
		if e, ok := old[addr]; ok {
			eps = append(eps, e)
		} else {
			eps = append(eps, b.newEndpoint(addr))
		}
	}
	b.eps.Store(&eps)
	b.log.Debug("rpc: server addresses", "addrs", addrs)
	for addr, e := range old {
		if !kept[addr] {
			b.removeLocked(e)
		}
	}
	select {
	case <-b.ready:
	default:
		close(b.ready)
	}
}

func (b *Balancer) newEndpoint(addr string) *Endpoint {
	e := &Endpoint{b: b, addr: addr}
	b.open.Add(1) // Done when its connections have closed
	cfg := b.cfg.Mux
	dial := cfg.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := dial(ctx, addr)
		if err != nil && ctx.Err() == nil {
			e.Failed()
		}
		return nc, err
	}
	e.conns = mux.NewGroup(addr, cfg)
	return e
}

// removeLocked takes e out of service: it takes no new call, and its
// connections close once its calls have ended. The caller holds mu.
func (b *Balancer) removeLocked(e *Endpoint) {
	b.gone[e] = true
	e.removed.Store(true)
	if e.inflight.Load() == 0 {
		e.closeConns()
	}
}

// Pick returns the endpoint for a call, with the call counted in flight
// on it: the caller calls Done on it when the call has left it. tried
// lists the endpoints this sending of the call has tried already, which
// Pick avoids, failing with ErrAllTried when there is no other. Ejected
// endpoints are avoided too; when every endpoint left is ejected, Pick
// takes the one whose ejection ends first rather than fail. Before the
// first Update, Pick waits for it, within ctx.
func (b *Balancer) Pick(ctx context.Context, tried []*Endpoint) (*Endpoint, error) {
	p := b.eps.Load()
	if p == nil {
		select {
		case <-b.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if p = b.eps.Load(); p == nil {
			return nil, ErrClosed
		}
	}
	for {
		e, err := b.pick(*p, tried)
		if err != nil {
			return nil, err
		}
		e.inflight.Add(1)
		if !e.removed.Load() {
			e.picked.Add(1)
			return e, nil
		}
		// Removed since the set was read: the newest set has not got it.
		e.Done()
		if p = b.eps.Load(); p == nil {
			return nil, ErrClosed
		}
	}
}

// pick chooses among eps by the policy.
func (b *Balancer) pick(eps []*Endpoint, tried []*Endpoint) (*Endpoint, error) {
	if len(eps) == 0 {
		return nil, ErrNoEndpoints
	}
	if len(eps) == 1 && len(tried) == 0 {
		return eps[0], nil // ejected or not: there is no other
	}
	now := time.Now().UnixNano()
	// The endpoints neither tried nor ejected; the ejected one that comes
	// back first, if they are all ejected.
	var ready [16]*Endpoint
	cand := ready[:0]
	var soonest *Endpoint
	for _, e := range eps {
		if slices.Contains(tried, e) {
			continue
		}
		if until := e.ejectedUntil.Load(); until > now {
			if soonest == nil || until < soonest.ejectedUntil.Load() {
				soonest = e
			}
			continue
		}
		cand = append(cand, e)
	}
	switch len(cand) {
	case 0:
		if soonest == nil {
			return nil, ErrAllTried
		}
		return soonest, nil
	case 1:
		return cand[0], nil
	}
	if b.cfg.Policy == RoundRobin {
		return cand[(b.next.Add(1)-1)%uint64(len(cand))], nil
	}
	i := rand.IntN(len(cand))
	j := rand.IntN(len(cand) - 1)
	if j >= i {
		j++
	}
	if cand[j].inflight.Load() < cand[i].inflight.Load() {
		return cand[j], nil
	}
	return cand[i], nil
}

// Stats describes one endpoint.
type Stats struct {
	Addr string
	// InFlight is the calls in flight on it; Picked counts the times
	// Pick chose it, and Ejections the times it was ejected. EjectedFor
	// is what is left of its ejection, 0 if it is not ejected.
	InFlight   int
	Picked     uint64
	Ejections  uint64
	EjectedFor time.Duration
	// Removed is set for an endpoint that a resolver's update took away,
	// whose calls have not all ended yet.
	Removed bool
	// Mux holds the counters of its connections.
	Mux mux.Stats
}

// Stats returns the counters of the endpoints: the current ones in the
// order of the latest update, then those removed whose calls have not all
// ended.
func (b *Balancer) Stats() []Stats {
	b.mu.Lock()
	var eps []*Endpoint
	if p := b.eps.Load(); p != nil {
		eps = slices.Clone(*p)
	}
	for e := range b.gone {
		eps = append(eps, e)
	}
	b.mu.Unlock()
	now := time.Now()
	out := make([]Stats, 0, len(eps))
	for _, e := range eps {
		s := Stats{Addr: e.addr, InFlight: int(e.inflight.Load()), Picked: e.picked.Load(),
			Ejections: e.ejections.Load(), Removed: e.removed.Load(), Mux: e.conns.Stats()}
		if until := time.Unix(0, e.ejectedUntil.Load()); until.After(now) {
			s.EjectedFor = until.Sub(now)
		}
		out = append(out, s)
	}
	return out
}

// MuxStats returns the counters of every endpoint's connections, added up.
func (b *Balancer) MuxStats() mux.Stats {
	var s mux.Stats
	for _, e := range b.Stats() {
		s.Conns += e.Mux.Conns
		s.Streams += e.Mux.Streams
		s.Dropped += e.Mux.Dropped
	}
	b.mu.Lock()
	s.Dropped += b.dropped
	b.mu.Unlock()
	return s
}

// Close makes Picks fail with ErrClosed, and closes every endpoint's
// connections once its calls in flight have ended; it waits for that.
func (b *Balancer) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		if p := b.eps.Load(); p != nil {
			for _, e := range *p {
				b.removeLocked(e)
			}
		}
		b.eps.Store(nil)
		select {
		case <-b.ready:
		default:
			close(b.ready)
		}
	}
	b.mu.Unlock()
	b.open.Wait()
	return nil
}
