package balancer

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"myrpc/v5-cluster/mux"
)

// Endpoint is one server address of a Balancer, with its own connections.
type Endpoint struct {
	b     *Balancer
	addr  string
	conns *mux.Group

	// inflight counts the calls picked for the endpoint that have not
	// left it (Done); picked counts every pick.
	inflight atomic.Int64
	picked   atomic.Uint64
	// removed is set when an update took the address away.
	removed atomic.Bool
	// closeOnce closes the connections, once removed and idle.
	closeOnce sync.Once

	// ejectedUntil is when the ejection ends, in Unix nanoseconds; 0 or a
	// time past when the endpoint is not ejected.
	ejectedUntil atomic.Int64
	ejections    atomic.Uint64
	// failures counts the ejections in a row, without a response between
	// them; a non-zero value makes ok take mu.
	failures atomic.Int32
	// mu orders the failures and responses that change the ejection.
	mu sync.Mutex
}

// Addr returns the endpoint's address.
func (e *Endpoint) Addr() string { return e.addr }

// Conns returns the endpoint's connections.
func (e *Endpoint) Conns() *mux.Group { return e.conns }

// Done ends a call's stay on the endpoint, counted by Pick. A removed
// endpoint closes its connections when the last call has left.
func (e *Endpoint) Done() {
	if e.inflight.Add(-1) == 0 && e.removed.Load() {
		e.closeConns()
	}
}

// closeConns closes the connections on a goroutine of its own, once: Done
// may run on a connection's reader, which closing the connection waits for.
func (e *Endpoint) closeConns() {
	e.closeOnce.Do(func() {
		go func() {
			defer e.b.open.Done()
			dropped := e.conns.Stats().Dropped
			e.conns.Close()
			e.b.mu.Lock()
			e.b.dropped += dropped
			delete(e.b.gone, e)
			e.b.mu.Unlock()
		}()
	})
}

// Failed reports that a connection to the endpoint failed: a dial, or a
// connection that broke. The endpoint is ejected: Pick avoids it until the
// back-off ends, which doubles with each ejection in a row. Failures while
// it is ejected, such as the other calls of the connection that broke,
// count as the same one.
func (e *Endpoint) Failed() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if e.ejectedUntil.Load() > now.UnixNano() {
		return
	}
	n := e.failures.Add(1)
	d := e.b.cfg.backoff(int(n))
	e.ejectedUntil.Store(now.Add(d).UnixNano())
	e.ejections.Add(1)
	e.b.log.Info("rpc: server ejected", "addr", e.addr, "for", d, "failures", n)
}

// OK reports that a response came from the endpoint: its next failure
// starts the back-off afresh.
func (e *Endpoint) OK() {
	if e.failures.Load() == 0 {
		return
	}
	e.mu.Lock()
	e.failures.Store(0)
	e.mu.Unlock()
}

// backoff returns the ejection after n failures in a row: EjectBase
// doubled n-1 times, up to EjectMax, spread by up to a fifth either way,
// and EjectMax at most.
func (c Config) backoff(n int) time.Duration {
	d := c.EjectBase
	for i := 1; i < n && d < c.EjectMax; i++ {
		d *= 2
	}
	d = min(d, c.EjectMax)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(d, c.EjectMax)
}
