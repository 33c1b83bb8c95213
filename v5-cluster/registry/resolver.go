package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"

	"myrpc/v5-cluster/resolver"
)

// Resolver is a resolver.Resolver that finds a service's servers in etcd,
// where Register puts them.
type Resolver struct {
	cli *clientv3.Client
	o   options
}

var _ resolver.Resolver = (*Resolver)(nil)

// NewResolver returns a Resolver that reads etcd through cli. Close what
// it resolves before cli: once cli is closed, their addresses stand still.
func NewResolver(cli *clientv3.Client, opts ...Option) *Resolver {
	return &Resolver{cli: cli, o: newOptions(opts)}
}

// Resolve reads service's addresses and gives them to update before it
// returns; it fails if etcd does not answer within the Resolver's timeout.
// It then watches them, and gives update the whole set again after each
// change. While etcd cannot be reached, update is not called: the
// addresses last given stand.
func (r *Resolver) Resolve(service string, update func(addrs []string)) (io.Closer, error) {
	return r.resolve(service, update, 0)
}

// resolve is Resolve; a watch starts after rev if rev is not 0, after the
// revision read otherwise.
func (r *Resolver) resolve(service string, update func(addrs []string), rev int64) (io.Closer, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{
		cli:    r.cli,
		o:      r.o,
		prefix: servicePrefix(service),
		update: update,
		log:    r.o.log.With("service", service),
		cancel: cancel,
	}
	gctx, gcancel := context.WithTimeout(ctx, r.o.timeout)
	read, err := w.get(gctx, true)
	gcancel()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("registry: resolve %s: %w", service, err)
	}
	if rev == 0 {
		rev = read
	}
	w.wg.Go(func() { w.follow(ctx, rev) })
	w.wg.Go(func() { w.health(ctx) })
	return w, nil
}

// watch follows one service's addresses.
type watch struct {
	cli    *clientv3.Client
	o      options
	prefix string
	update func([]string)
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// keys maps each key under prefix to its address; last is what update
	// was given last. Only get and follow use them, one after the other.
	keys map[string]string
	last []string

	// mu protects unreachable.
	mu sync.Mutex
	// unreachable is set while etcd is known to be away, so that it is
	// logged once.
	unreachable bool
}

// Close stops following; no update runs after it returns.
func (w *watch) Close() error {
	w.cancel()
	w.wg.Wait()
	return nil
}

// get reads every key under the prefix, gives update the addresses if
// they changed (or always, if first), and returns the revision of the
// read.
func (w *watch) get(ctx context.Context, first bool) (int64, error) {
	resp, err := w.cli.Get(ctx, w.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	w.keys = make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		w.keys[string(kv.Key)] = string(kv.Value)
	}
	w.publish(first)
	return resp.Header.Revision, nil
}

// publish gives update the current addresses, sorted and each once, if
// they are not what it was given last (or always, if first).
func (w *watch) publish(first bool) {
	addrs := slices.Compact(slices.Sorted(maps.Values(w.keys)))
	if addrs == nil {
		addrs = []string{}
	}
	if !first && slices.Equal(addrs, w.last) {
		return
	}
	w.last = addrs
	w.update(slices.Clone(addrs))
}

// follow watches the prefix from rev+1 until ctx is cancelled. When the
// watch ends (etcd compacted the revisions it needs, or a member without
// a leader cancelled it) it reads the whole set again and watches on from
// there.
func (w *watch) follow(ctx context.Context, rev int64) {
	for ctx.Err() == nil {
		// Each watch has a context of its own, so that leaving it ends
		// it in the client too.
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := w.cli.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range wch {
			if wr.CompactRevision != 0 {
				w.log.Info("registry: changes compacted away; reading the addresses again",
					"rev", rev, "compacted", wr.CompactRevision)
				break
			}
			if err := wr.Err(); err != nil {
				w.log.Debug("registry: watch ended", "err", err)
				break
			}
			for _, ev := range wr.Events {
				switch ev.Type {
				case clientv3.EventTypePut:
					w.keys[string(ev.Kv.Key)] = string(ev.Kv.Value)
				case clientv3.EventTypeDelete:
					delete(w.keys, string(ev.Kv.Key))
				}
			}
			rev = wr.Header.Revision
			w.publish(false)
			w.reachable()
		}
		cancel()
		var ok bool
		if rev, ok = w.reread(ctx); !ok {
			return
		}
	}
}

// reread reads the whole set again, trying until it succeeds (true), or
// ctx is cancelled or the client closed (false), and returns its
// revision.
func (w *watch) reread(ctx context.Context) (int64, bool) {
	backoff := minBackoff
	for {
		gctx, cancel := context.WithTimeout(ctx, w.o.timeout)
		rev, err := w.get(gctx, false)
		cancel()
		if err == nil {
			w.reachable()
			return rev, true
		}
		if ctx.Err() != nil || w.cli.Ctx().Err() != nil {
			return 0, false
		}
		w.away(err)
		if !sleep(ctx, ctx, backoff) {
			return 0, false
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// health follows the state of the client's connection to etcd, which is
// ready while any member can be reached, and says when etcd goes away and
// comes back. A watch waiting for etcd says nothing itself.
func (w *watch) health(ctx context.Context) {
	conn := w.cli.ActiveConnection()
	for {
		state := conn.GetState()
		switch state {
		case connectivity.TransientFailure:
			w.away(nil)
		case connectivity.Ready:
			w.reachable()
		}
		if !conn.WaitForStateChange(ctx, state) {
			return
		}
	}
}

// away logs, once until etcd is reachable again, that it is not.
func (w *watch) away(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.unreachable {
		return
	}
	w.unreachable = true
	attrs := []any{"endpoints", w.cli.Endpoints()}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	w.log.Warn("registry: etcd unreachable; keeping the addresses known", attrs...)
}

// reachable logs that etcd is reachable again, if it was said not to be.
func (w *watch) reachable() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.unreachable {
		return
	}
	w.unreachable = false
	w.log.Info("registry: etcd reachable again")
}
