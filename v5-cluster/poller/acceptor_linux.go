package poller

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// acceptor is the accept reactor: it waits for the listening socket,
// accepts every connection that is ready, and hands each to a loop.
type acceptor struct {
	e       *Engine
	fd      int
	ep      *epoll
	stopped atomic.Bool
	// listening says whether fd is in the epoll set: not during a backoff,
	// nor while MaxConns connections are open.
	listening bool
}

func newAcceptor(e *Engine, fd int) (*acceptor, error) {
	ep, err := newEpoll()
	if err != nil {
		return nil, err
	}
	return &acceptor{e: e, fd: fd, ep: ep}, nil
}

// setListening adds the listening socket to the epoll set, or takes it
// out: level-triggered, a ready socket we do not mean to accept from
// would wake us again and again.
func (a *acceptor) setListening(on bool) error {
	if on == a.listening {
		return nil
	}
	var err error
	if on {
		err = a.ep.add(a.fd, unix.EPOLLIN)
	} else {
		err = a.ep.del(a.fd)
	}
	if err == nil {
		a.listening = on
	}
	return err
}

// run accepts until stop. Accept errors that running out of descriptors or
// memory cause (EMFILE and the like) are waited out: 5 ms, doubling to 1 s,
// logged once per streak, with the listening socket out of the epoll set
// so that the wait is a real wait and not a busy loop.
func (a *acceptor) run() error {
	e := a.e
	var backoff time.Duration
	failures := 0
	for {
		if a.stopped.Load() {
			return ErrClosed
		}
		atCap := e.cfg.MaxConns > 0 && e.conns.Load() >= int64(e.cfg.MaxConns)
		if err := a.setListening(!atCap && backoff == 0); err != nil {
			return err
		}
		msec := -1
		if backoff > 0 {
			msec = int(backoff / time.Millisecond)
		}
		if _, _, err := a.ep.wait(msec); err != nil {
			return err
		}
		if a.stopped.Load() {
			return ErrClosed
		}
		for !atCap {
			nfd, _, err := unix.Accept4(a.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err != nil {
				if err == unix.EINTR || err == unix.ECONNABORTED {
					continue
				}
				if err == unix.EAGAIN {
					backoff = 0
					break
				}
				if temporary(err) {
					backoff = nextBackoff(backoff)
					failures++
					if failures == 1 {
						e.log.Warn("rpc: accept failed; backing off", "err", os.NewSyscallError("accept4", err), "delay", backoff)
					}
					break
				}
				return os.NewSyscallError("accept4", err)
			}
			if failures > 0 {
				e.log.Info("rpc: accept recovered", "failures", failures)
				failures, backoff = 0, 0
			}
			// Go sets TCP_NODELAY on the sockets it accepts; a raw socket
			// must ask for it, or Nagle's algorithm holds back small
			// responses waiting for an acknowledgement.
			unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			e.conns.Add(1)
			e.pick().adopt(nfd)
			atCap = e.cfg.MaxConns > 0 && e.conns.Load() >= int64(e.cfg.MaxConns)
		}
	}
}

func (a *acceptor) stop() {
	a.stopped.Store(true)
	a.ep.wake()
}

func (a *acceptor) close() { a.ep.close() }

// temporary reports whether an accept error is worth waiting out.
func temporary(err error) bool {
	for _, e := range []error{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM, unix.EPROTO, unix.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// nextBackoff doubles d, starting at 5 ms and stopping at 1 s.
func nextBackoff(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return 5 * time.Millisecond
	case 2*d > time.Second:
		return time.Second
	default:
		return 2 * d
	}
}
