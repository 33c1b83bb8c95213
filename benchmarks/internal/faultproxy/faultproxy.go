// Package faultproxy is a TCP proxy that puts faults into the connections
// it carries, for the soak test. Each connection a client opens to the
// proxy is joined to a connection of its own to the target; the proxy
// copies bytes both ways, in order, and never moves a byte from one
// connection to another. On command it does to one connection what a
// network or a peer does sooner or later:
//
//   - Reset: both ends get a TCP reset (SO_LINGER 0, then close).
//   - HalfClose: one end gets a FIN, as if the other had called
//     CloseWrite; what is then sent towards that end is dropped.
//   - Stall: nothing is forwarded, either way, for a while; the sockets'
//     buffers fill and the senders block.
//   - Fragment: for a while, bytes are forwarded in small chunks with a
//     small pause after each.
//
// When the proxy cannot reach the target (the server is down), it resets
// the client's connection at once.
package faultproxy

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DialTimeout bounds the proxy's dial to the target.
const DialTimeout = time.Second

// Direction names one way of a proxied connection.
type Direction int

const (
	// ToServer is from the client to the target.
	ToServer Direction = iota
	// ToClient is from the target to the client.
	ToClient
)

func (d Direction) String() string {
	if d == ToServer {
		return "to-server"
	}
	return "to-client"
}

// Stats counts what a proxy has done.
type Stats struct {
	// Accepted counts the client connections accepted; DialFailures, those
	// reset because the target could not be reached.
	Accepted     int64 `json:"accepted"`
	DialFailures int64 `json:"dial_failures"`
	// Resets, HalfCloses, Stalls and Fragments count the faults put into
	// open connections.
	Resets     int64 `json:"resets"`
	HalfCloses int64 `json:"half_closes"`
	Stalls     int64 `json:"stalls"`
	Fragments  int64 `json:"fragments"`
	// Chunks counts the writes made while fragmenting.
	Chunks int64 `json:"chunks"`
}

// Proxy forwards the connections it accepts to a target address.
type Proxy struct {
	lis    net.Listener
	target string
	log    *slog.Logger
	opts   Options
	// wg counts every goroutine the proxy started.
	wg sync.WaitGroup

	// mu protects conns, nextID and closed.
	mu     sync.Mutex
	conns  map[*Conn]struct{}
	nextID uint64
	closed bool

	accepted, dialFailures, resets, halfCloses, stalls, fragments, chunks atomic.Int64
}

// Options configure a proxy.
type Options struct {
	// Logger receives what goes wrong with the listener (default
	// slog.Default()).
	Logger *slog.Logger
	// SocketBuffer, when above 0, sets the kernel's send and receive
	// buffers of the proxy's sockets (SO_SNDBUF, SO_RCVBUF; Linux doubles
	// the value). Small buffers make a stall felt at once: the peers'
	// writes block after a few KiB instead of a few MiB.
	SocketBuffer int
}

// Listen starts a proxy on a free loopback port that forwards every
// connection to target.
func Listen(target string, o Options) (*Proxy, error) {
	lc := net.ListenConfig{Control: o.control}
	lis, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Proxy{lis: lis, target: target, log: log, opts: o, conns: make(map[*Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// control sets the socket buffers of a socket before it connects or
// listens (an accepted socket inherits the listener's).
func (o Options) control(_, _ string, rc syscall.RawConn) error {
	if o.SocketBuffer <= 0 {
		return nil
	}
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = setBuffers(int(fd), o.SocketBuffer)
	})
	return cmp.Or(err, serr)
}

// Addr returns the address clients connect to.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Stats returns what the proxy has done so far.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted:     p.accepted.Load(),
		DialFailures: p.dialFailures.Load(),
		Resets:       p.resets.Load(),
		HalfCloses:   p.halfCloses.Load(),
		Stalls:       p.stalls.Load(),
		Fragments:    p.fragments.Load(),
		Chunks:       p.chunks.Load(),
	}
}

// Conns returns the connections open now, oldest first.
func (p *Proxy) Conns() []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Conn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Conn) int { return cmp.Compare(a.id, b.id) })
	return out
}

// Calm ends every fault at once: stalls and fragmenting end, and the
// connections a fault half-closed are reset, so that no fault outlives
// Calm (a half-closed connection would go on dropping requests until its
// other end closes). The resets are not counted in Stats.
func (p *Proxy) Calm() {
	for _, c := range p.Conns() {
		c.mu.Lock()
		c.stallUntil = time.Time{}
		c.fragUntil = time.Time{}
		c.broadcast()
		half := c.shut[ToServer] || c.shut[ToClient]
		c.mu.Unlock()
		if half {
			c.client.SetLinger(0)
			c.server.SetLinger(0)
			c.close()
		}
	}
}

// Close stops accepting, closes every connection and waits for the proxy's
// goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.lis.Close()
	for _, c := range p.Conns() {
		c.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		cc, err := p.lis.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: the client's dial fails or waits,
			// which is the fault it would meet without the proxy.
			p.log.Warn("faultproxy: accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.join(cc.(*net.TCPConn))
	}
}

// join dials the target for the client connection cc and forwards between
// the two until both directions end or the connection is closed.
func (p *Proxy) join(cc *net.TCPConn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: DialTimeout, Control: p.opts.control}
	sc, err := d.Dial("tcp", p.target)
	if err != nil {
		p.dialFailures.Add(1)
		cc.SetLinger(0)
		cc.Close()
		return
	}
	c := &Conn{p: p, client: cc, server: sc.(*net.TCPConn), changed: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		cc.Close()
		sc.Close()
		return
	}
	c.id = p.nextID
	p.nextID++
	p.conns[c] = struct{}{}
	p.mu.Unlock()

	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c.pump(ToClient)
	}()
	c.pump(ToServer)
}

// Conn is one proxied connection: a client's connection to the proxy and
// the proxy's to the target.
type Conn struct {
	p              *Proxy
	id             uint64
	client, server *net.TCPConn

	// mu protects the fields below.
	mu sync.Mutex
	// stallUntil is when a stall ends; fragUntil, when fragmenting ends,
	// and until then writes carry at most fragChunk bytes and are followed
	// by a pause of fragDelay.
	stallUntil time.Time
	fragUntil  time.Time
	fragChunk  int
	fragDelay  time.Duration
	// changed is closed, and replaced, whenever the fields above or
	// closed or shut change, to wake the pumps.
	changed chan struct{}
	// shut[d] is set when a fault half-closed direction d: what comes
	// that way is dropped. done[d] is set when direction d reached the
	// end of its input.
	shut   [2]bool
	done   [2]bool
	closed bool
}

// ID returns the connection's number, in order of acceptance from 0.
func (c *Conn) ID() uint64 { return c.id }

// broadcast wakes the pumps; c.mu must be held.
func (c *Conn) broadcast() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// ends returns the source and the destination of direction d.
func (c *Conn) ends(d Direction) (src, dst *net.TCPConn) {
	if d == ToServer {
		return c.client, c.server
	}
	return c.server, c.client
}

// Reset resets both ends of the connection. It returns false if the
// connection was already closed.
func (c *Conn) Reset() bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.mu.Unlock()
	c.client.SetLinger(0)
	c.server.SetLinger(0)
	if !c.close() {
		return false
	}
	c.p.resets.Add(1)
	return true
}

// HalfClose sends a FIN in direction d, to the server for ToServer and to
// the client for ToClient, and drops whatever comes that way afterwards;
// the other direction goes on. It returns false if the connection is
// closed or direction d has already ended.
func (c *Conn) HalfClose(d Direction) bool {
	c.mu.Lock()
	if c.closed || c.shut[d] || c.done[d] {
		c.mu.Unlock()
		return false
	}
	c.shut[d] = true
	c.broadcast()
	c.mu.Unlock()
	_, dst := c.ends(d)
	dst.CloseWrite()
	c.p.halfCloses.Add(1)
	return true
}

// Stall stops forwarding, both ways, for d (or until Calm). It returns
// false if the connection is closed.
func (c *Conn) Stall(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.stallUntil = time.Now().Add(d)
	c.broadcast()
	c.p.stalls.Add(1)
	return true
}

// Fragment forwards, both ways, for d (or until Calm), in writes of at
// most chunk bytes, each followed by a pause of delay. It returns false if
// the connection is closed.
func (c *Conn) Fragment(chunk int, delay, d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.fragUntil = time.Now().Add(d)
	c.fragChunk = max(chunk, 1)
	c.fragDelay = delay
	c.broadcast()
	c.p.fragments.Add(1)
	return true
}

// close closes both ends and forgets the connection. It returns false if
// the connection was already closed.
func (c *Conn) close() bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.closed = true
	c.broadcast()
	c.mu.Unlock()
	c.client.Close()
	c.server.Close()
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	return true
}

// pump copies direction d until its source ends or the connection closes.
func (c *Conn) pump(d Direction) {
	src, dst := c.ends(d)
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !c.forward(d, dst, buf[:n]) {
			c.close()
			return
		}
		if errors.Is(err, io.EOF) {
			// The sender half-closed: pass that on, unless a fault did
			// already, and close when both ways have ended.
			c.mu.Lock()
			c.done[d] = true
			shut := c.shut[d]
			both := c.done[ToServer] && c.done[ToClient]
			c.mu.Unlock()
			if !shut {
				dst.CloseWrite()
			}
			if both {
				c.close()
			}
			return
		}
		if err != nil {
			// A reset, or the connection was closed.
			c.close()
			return
		}
	}
}

// forward writes b to dst as the connection's state allows. It returns
// false if the connection closed or the write failed.
func (c *Conn) forward(d Direction, dst *net.TCPConn, b []byte) bool {
	for len(b) > 0 {
		g, ok := c.gate(d)
		if !ok {
			return false
		}
		if g.shut {
			return true // half-closed by a fault: dropped
		}
		n := len(b)
		if g.chunk > 0 {
			n = min(n, g.chunk)
		}
		if g.chunk > 0 {
			c.p.chunks.Add(1)
		}
		if _, err := dst.Write(b[:n]); err != nil {
			c.mu.Lock()
			shut := c.shut[d]
			c.mu.Unlock()
			return shut
		}
		b = b[n:]
		if g.chunk > 0 && !c.pause(g.delay) {
			return false
		}
	}
	return true
}

// gateState is what a pump may do with its next write.
type gateState struct {
	shut  bool
	chunk int // above 0 while fragmenting
	delay time.Duration
}

// gate waits out a stall and returns the state of direction d; ok is false
// once the connection is closed.
func (c *Conn) gate(d Direction) (g gateState, ok bool) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return gateState{}, false
		}
		now := time.Now()
		wait := c.stallUntil.Sub(now)
		changed := c.changed
		g = gateState{shut: c.shut[d]}
		if now.Before(c.fragUntil) {
			g.chunk, g.delay = c.fragChunk, c.fragDelay
		}
		c.mu.Unlock()
		if g.shut || wait <= 0 {
			return g, true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-changed:
		}
		t.Stop()
	}
}

// pause waits d, or less if the connection's state changes; it returns
// false if the connection is closed.
func (c *Conn) pause(d time.Duration) bool {
	c.mu.Lock()
	changed, closed := c.changed, c.closed
	c.mu.Unlock()
	if closed {
		return false
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-changed:
		}
		t.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed
}
