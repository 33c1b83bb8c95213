package etcdlocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
)

// Cluster is etcd running in this process: one member or several, each
// on its own pair of loopback ports.
type Cluster struct {
	dir   string
	token string
	o     options

	// mu protects closed and each member's running etcd (etcd, cut,
	// stopping, stopped).
	mu      sync.Mutex
	members []*member
	closed  bool
}

// member is one etcd member: its name, addresses and data stay the same
// across Stop and Restart.
type member struct {
	name   string
	dir    string
	peer   url.URL
	client url.URL

	// etcd is the running member, nil while stopped.
	etcd *embed.Etcd

	// cut ends the client streams of the running member (see cutStreams).
	cut context.CancelFunc
	// stopping is set when the running member is being stopped.
	stopping *atomic.Bool

	// stopped is closed when the running member is stopped: a Restart
	// waiting for it to serve waits no longer.
	stopped <-chan struct{}
}

// Option configures Start and StartCluster.
type Option func(*options)

type options struct {
	log   *slog.Logger
	level slog.Level
}

// WithLogger sets the logger that etcd's words go to.
// Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithLogLevel sets the lowest level of what etcd logs that is kept; etcd
// is talkative at Info and below. Default: slog.LevelError.
func WithLogLevel(l slog.Level) Option { return func(o *options) { o.level = l } }

// ErrClosed is returned by the methods of a Cluster that was closed.
var ErrClosed = errors.New("etcdlocal: cluster closed")

// startAttempts bounds the fresh starts when a port chosen free was taken
// by someone else before etcd bound it.
const startAttempts = 5

// Start starts a one-member etcd and returns when it serves. ctx bounds
// the start.
func Start(ctx context.Context, opts ...Option) (*Cluster, error) {
	return StartCluster(ctx, 1, opts...)
}

// StartCluster starts an etcd cluster of n members and returns when every
// member serves. ctx bounds the start.
func StartCluster(ctx context.Context, n int, opts ...Option) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("etcdlocal: %d members", n)
	}
	o := options{log: slog.Default(), level: slog.LevelError}
	for _, opt := range opts {
		opt(&o)
	}
	dir, err := os.MkdirTemp("", "etcdlocal-")
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		c, err := startCluster(ctx, dir, n, o)
		if err == nil {
			return c, nil
		}
		if attempt == startAttempts || !errors.Is(err, syscall.EADDRINUSE) {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		// A port was taken between choosing it and binding it: start
		// afresh on other ports, with no data left from the try.
		if err := clearDir(dir); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

func startCluster(ctx context.Context, dir string, n int, o options) (*Cluster, error) {
	ports, err := choosePorts(2 * n)
	if err != nil {
		return nil, err
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, token: token, o: o}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		c.members = append(c.members, &member{
			name:   name,
			dir:    filepath.Join(dir, name),
			peer:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i])},
			client: url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])},
		})
	}
	// Every member is started before any is waited for: a member of
	// several is ready only once a quorum has elected a leader.
	for _, m := range c.members {
		if err := c.start(m); err != nil {
			c.stopAll()
			return nil, err
		}
	}
	for _, m := range c.members {
		if err := waitReady(ctx, m.name, m.etcd, m.stopped); err != nil {
			c.stopAll()
			return nil, err
		}
	}
	return c, nil
}

// start starts m, without waiting for it to serve.
func (c *Cluster) start(m *member) error {
	cut, cancel := context.WithCancel(context.Background())
	stopping := new(atomic.Bool)
	cfg := c.config(m)
	cfg.GRPCAdditionalServerOptions = []grpc.ServerOption{grpc.ChainStreamInterceptor(cutStreams(cut))}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZap(c.o.log, c.o.level, stopping))
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		cancel()
		return fmt.Errorf("etcdlocal: start %s: %w", m.name, err)
	}
	m.etcd, m.cut, m.stopping = e, cancel, stopping
	m.stopped = cut.Done()
	return nil
}

// stop stops m, ending its clients' streams first. What etcd logs from
// then on is at Debug.
func (m *member) stop() {
	m.stopping.Store(true)
	m.cut()
	select {
	case <-m.etcd.Server.ReadyNotify():
	default:
		// A member that never served (one restarted without a quorum):
		// embed's Close waits for its client servers, which start only
		// when it serves or its server stops, and stops the server only
		// after them. Stopped first, the server lets Close through.
		m.etcd.Server.HardStop()
	}
	m.etcd.Close()
}

// cutStreams returns a gRPC interceptor that ends a client's stream when
// cut is done. etcd stops gracefully: it waits for its client streams to
// end, up to its request timeout (7 s), and a client's lease keep-alive
// stream does not end by itself. A member whose streams are cut first
// stops at once, as one that crashes does.
func cutStreams(cut context.Context) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		defer context.AfterFunc(cut, cancel)()
		return handler(srv, cutStream{ss, ctx})
	}
}

// cutStream is a grpc.ServerStream with a context of its own.
type cutStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s cutStream) Context() context.Context { return s.ctx }

// config returns the embed configuration of m.
func (c *Cluster) config(m *member) *embed.Config {
	peers := make([]string, len(c.members))
	for i, p := range c.members {
		peers[i] = p.name + "=" + p.peer.String()
	}
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenPeerUrls = []url.URL{m.peer}
	cfg.AdvertisePeerUrls = []url.URL{m.peer}
	cfg.ListenClientUrls = []url.URL{m.client}
	cfg.AdvertiseClientUrls = []url.URL{m.client}
	cfg.InitialCluster = strings.Join(peers, ",")
	cfg.InitialClusterToken = c.token
	cfg.UnsafeNoFsync = true
	cfg.EnableGRPCGateway = false
	return cfg
}

// waitReady waits until e, the running etcd of the member name, serves
// clients. stopped is closed if the member is stopped first.
func waitReady(ctx context.Context, name string, e *embed.Etcd, stopped <-chan struct{}) error {
	select {
	case <-e.Server.ReadyNotify():
		// Ready, even if ctx has ended too.
		return nil
	default:
	}
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("etcdlocal: %s stopped while starting: %w", name, err)
	case <-stopped:
		return fmt.Errorf("etcdlocal: %s stopped while starting", name)
	case <-ctx.Done():
		return fmt.Errorf("etcdlocal: %s not ready: %w", name, context.Cause(ctx))
	}
}

// Endpoints returns the client addresses (host:port) of every member,
// stopped or not, in member order.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.client.Host
	}
	return eps
}

// Endpoint returns the client address (host:port) of member i.
func (c *Cluster) Endpoint(i int) string { return c.members[i].client.Host }

// Leader returns the index of the member that leads the cluster as far
// as that member knows, or -1 if no running member does.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.members {
		if m.etcd != nil && m.etcd.Server.Leader() == m.etcd.Server.MemberID() {
			return i
		}
	}
	return -1
}

// Dir returns the directory that holds the members' data.
func (c *Cluster) Dir() string { return c.dir }

// Size returns the number of members, stopped or not.
func (c *Cluster) Size() int { return len(c.members) }

// Stop stops member i, keeping its data and its addresses. Its clients'
// streams (watches, lease keep-alives) are cut at once, as when a member
// crashes, rather than waited for. Stopping a stopped member does
// nothing.
func (c *Cluster) Stop(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	m := c.members[i]
	if m.etcd != nil {
		m.stop()
		m.etcd = nil
	}
	return nil
}

// Restart starts member i again, with the data and addresses it had, and
// returns when it serves. ctx bounds the wait; a member that does not
// serve within it is stopped again. Restarting a running member only
// waits for it to serve (it may be starting, for another Restart). The
// wait holds no lock: the other methods go on meanwhile, and a Stop or
// Close of the member ends it.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	m := c.members[i]
	started := m.etcd == nil
	if started {
		if err := c.start(m); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	e, stopped := m.etcd, m.stopped
	c.mu.Unlock()

	err := waitReady(ctx, m.name, e, stopped)
	if err == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	// Unless a Stop got there first, the start that failed is stopped.
	if started && m.etcd == e {
		m.stop()
		m.etcd = nil
	}
	return err
}

// Close stops every member and removes their data. It is safe to call
// more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.stopAll()
	return os.RemoveAll(c.dir)
}

// stopAll stops every running member: the others at once, then the
// leader. A leader that stops while its followers run hands its
// leadership on first, and one whose followers are stopping waits for the
// hand-over until the request timeout (7 s); with none left, it just
// stops.
func (c *Cluster) stopAll() {
	var wg sync.WaitGroup
	var leaders []*member
	for _, m := range c.members {
		switch {
		case m.etcd == nil:
		case m.etcd.Server.Leader() == m.etcd.Server.MemberID():
			leaders = append(leaders, m)
		default:
			wg.Go(m.stop)
		}
	}
	wg.Wait()
	for _, m := range leaders {
		wg.Go(m.stop)
	}
	wg.Wait()
	for _, m := range c.members {
		m.etcd = nil
	}
}

// choosePorts chooses the ports of a start; tests replace it.
var choosePorts = freePorts

// freePorts returns n distinct loopback ports that were free a moment
// ago. They are held open together until all are chosen, so none repeats;
// another program may still take one before etcd binds it, which Start
// answers by trying other ports.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// randomToken returns a cluster token that no other cluster has, so that
// members of two clusters never take each other for peers.
func randomToken() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "etcdlocal-" + hex.EncodeToString(b), nil
}

// clearDir removes what dir holds, keeping dir.
func clearDir(dir string) error {
	es, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range es {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
