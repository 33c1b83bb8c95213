package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"myrpc/v5-cluster/resolver"
)

// Prefix is the etcd key prefix under which every service's servers are
// registered.
const Prefix = "/myrpc/services/"

// Key returns the key under which addr is registered as a server of
// service.
func Key(service, addr string) string { return Prefix + service + "/" + addr }

// servicePrefix returns the prefix of the keys of service's servers.
func servicePrefix(service string) string { return Prefix + service + "/" }

// ErrBadName is returned for an empty service name or address, or a
// service name with a '/'.
var ErrBadName = fmt.Errorf("registry: %w", resolver.ErrBadName)

func checkService(service string) error {
	if service == "" || strings.Contains(service, "/") {
		return fmt.Errorf("%w: service %q", ErrBadName, service)
	}
	return nil
}

// Option configures Register and NewResolver.
type Option func(*options)

type options struct {
	log     *slog.Logger
	timeout time.Duration
}

func newOptions(opts []Option) options {
	o := options{log: slog.Default(), timeout: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithTimeout bounds each request to etcd that runs on its own: a
// Resolver's reads, a registration's renewal after a lost lease. Calls
// that take a context are bounded by it instead. Default: 5 s.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Backoff between tries of a registration or a read that failed.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// Registration is a server's address kept in etcd. Deregister removes it.
type Registration struct {
	cli     *clientv3.Client
	service string
	addr    string
	key     string
	ttl     int64
	o       options

	// stop ends the keep-alive; done is closed when it has ended.
	stop context.CancelFunc
	done chan struct{}

	// mu protects lease.
	mu    sync.Mutex
	lease clientv3.LeaseID

	deregister sync.Once
	err        error
}

// Register puts addr in etcd as a server of service, under a lease of ttl
// (rounded up to whole seconds; etcd raises a lease shorter than its
// minimum, 2 s with its default timing), and keeps the lease alive until
// Deregister or until cli is closed. If the lease is lost, because etcd
// was away for longer than ttl, it registers again, under a new lease, as
// soon as it can. Register returns once addr is in etcd, or the error
// that kept it out; ctx bounds that first put only.
func Register(ctx context.Context, cli *clientv3.Client, service, addr string, ttl time.Duration, opts ...Option) (*Registration, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	if addr == "" {
		return nil, fmt.Errorf("%w: empty address", ErrBadName)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("registry: ttl %v", ttl)
	}
	r := &Registration{
		cli:     cli,
		service: service,
		addr:    addr,
		key:     Key(service, addr),
		ttl:     int64(math.Ceil(ttl.Seconds())),
		o:       newOptions(opts),
		done:    make(chan struct{}),
	}
	lease, err := r.put(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry: register %s of %s: %w", addr, service, err)
	}
	r.lease = lease
	kctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	go r.keep(kctx)
	return r, nil
}

// put grants a lease and puts the key under it.
func (r *Registration) put(ctx context.Context) (clientv3.LeaseID, error) {
	g, err := r.cli.Grant(ctx, r.ttl)
	if err != nil {
		return 0, err
	}
	if _, err := r.cli.Put(ctx, r.key, r.addr, clientv3.WithLease(g.ID)); err != nil {
		// Best effort: the lease ends by itself otherwise.
		_, _ = r.cli.Revoke(ctx, g.ID)
		return 0, err
	}
	return g.ID, nil
}

// Lease returns the lease the address is registered under now.
func (r *Registration) Lease() clientv3.LeaseID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lease
}

// keep keeps the lease alive, and registers again when it is lost, until
// ctx is cancelled or the client is closed.
func (r *Registration) keep(ctx context.Context) {
	defer close(r.done)
	log := r.o.log.With("service", r.service, "addr", r.addr)
	for {
		lease := r.Lease()
		ch, err := r.cli.KeepAlive(ctx, lease)
		if err == nil {
			// The channel closes when ctx is cancelled, the client is
			// closed, or the lease is gone: not renewed within its TTL.
			for range ch {
			}
		}
		if ctx.Err() != nil || r.cli.Ctx().Err() != nil {
			return
		}
		if err != nil {
			// The client's keep-alive machinery gave up: pause before a
			// new lease, so that this loop never spins.
			log.Warn("registry: keep-alive failed; registering again", "lease", int64(lease), "err", err)
			if !sleep(ctx, r.cli.Ctx(), maxBackoff) {
				return
			}
		} else {
			log.Warn("registry: lease lost; registering again", "lease", int64(lease))
		}
		next, ok := r.renew(ctx, log)
		if !ok {
			return
		}
		r.mu.Lock()
		r.lease = next
		r.mu.Unlock()
		// The key has left the old lease: revoking it, if etcd still
		// has it, removes nothing but the lease.
		rctx, cancel := context.WithTimeout(ctx, r.o.timeout)
		_, _ = r.cli.Revoke(rctx, lease)
		cancel()
		log.Info("registry: registered again", "lease", int64(next))
	}
}

// renew puts the key under a new lease, trying again with backoff until
// it succeeds (true) or ctx is cancelled or the client closed (false).
func (r *Registration) renew(ctx context.Context, log *slog.Logger) (clientv3.LeaseID, bool) {
	backoff := minBackoff
	for {
		pctx, cancel := context.WithTimeout(ctx, r.o.timeout)
		lease, err := r.put(pctx)
		cancel()
		if err == nil {
			return lease, true
		}
		log.Debug("registry: register again", "err", err)
		if !sleep(ctx, r.cli.Ctx(), backoff) {
			return 0, false
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// Deregister stops keeping the address alive, deletes its key and revokes
// its lease (a lease that already ended is no error). Calls after the
// first return the first's error.
func (r *Registration) Deregister(ctx context.Context) error {
	r.deregister.Do(func() {
		r.stop()
		<-r.done
		lease := r.Lease()
		_, errDel := r.cli.Delete(ctx, r.key)
		_, errRev := r.cli.Revoke(ctx, lease)
		if errors.Is(errRev, rpctypes.ErrLeaseNotFound) {
			errRev = nil
		}
		if err := errors.Join(errDel, errRev); err != nil {
			r.err = fmt.Errorf("registry: deregister %s of %s: %w", r.addr, r.service, err)
		}
	})
	return r.err
}

// sleep waits for d, and returns false at once if a or b is done first.
func sleep(a, b context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-a.Done():
		return false
	case <-b.Done():
		return false
	}
}
