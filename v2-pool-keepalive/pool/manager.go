package pool

import (
	"context"
	"errors"
	"sync"
)

// Manager holds one pool per target address. The client owns it and closes
// it: there is no process-wide pool, and no signal handler in the library.
type Manager struct {
	cfg Config

	// mu protects pools and closed.
	mu     sync.RWMutex
	pools  map[string]*Pool
	closed bool
}

// NewManager returns a manager whose pools use cfg.
func NewManager(cfg Config) *Manager {
	return &Manager{cfg: cfg, pools: make(map[string]*Pool)}
}

// Get returns a connection to addr from addr's pool, creating the pool on
// first use.
func (m *Manager) Get(ctx context.Context, addr string) (*Conn, error) {
	p, err := m.pool(addr)
	if err != nil {
		return nil, err
	}
	return p.Get(ctx)
}

// Put gives a connection back to its pool; see Pool.Put.
func (m *Manager) Put(c *Conn, err error) {
	c.pool.Put(c, err)
}

func (m *Manager) pool(addr string) (*Pool, error) {
	m.mu.RLock()
	p, ok := m.pools[addr]
	closed := m.closed
	m.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if ok {
		return p, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if p, ok = m.pools[addr]; !ok {
		p = New(addr, m.cfg)
		m.pools[addr] = p
	}
	return p, nil
}

// Stats returns each pool's counters, by address.
func (m *Manager) Stats() map[string]Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]Stats, len(m.pools))
	for addr, p := range m.pools {
		out[addr] = p.Stats()
	}
	return out
}

// Close closes every pool, waiting within ctx for the connections in use
// to come back.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	pools := make([]*Pool, 0, len(m.pools))
	for _, p := range m.pools {
		pools = append(pools, p)
	}
	m.mu.Unlock()
	var errs []error
	for _, p := range pools {
		if err := p.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
