package poller

import (
	"encoding/binary"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// epoll is an epoll instance with an eventfd to wake it.
type epoll struct {
	fd     int
	wakeFD int
	events []unix.EpollEvent

	// cmu guards closed: wake may be called from any goroutine at any
	// time, also after close, and a write to a closed descriptor's number
	// would land in whatever file reuses it (a client's socket, say).
	cmu    sync.RWMutex
	closed bool
}

func newEpoll() (*epoll, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	p := &epoll{fd: fd, wakeFD: wfd, events: make([]unix.EpollEvent, 256)}
	if err := p.add(wfd, unix.EPOLLIN); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// add registers fd, level-triggered: the event repeats as long as the
// condition holds, so a loop may read part of what is ready and come back.
func (p *epoll) add(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	return os.NewSyscallError("epoll_ctl", unix.EpollCtl(p.fd, unix.EPOLL_CTL_ADD, fd, &ev))
}

func (p *epoll) mod(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	return os.NewSyscallError("epoll_ctl", unix.EpollCtl(p.fd, unix.EPOLL_CTL_MOD, fd, &ev))
}

func (p *epoll) del(fd int) error {
	return os.NewSyscallError("epoll_ctl", unix.EpollCtl(p.fd, unix.EPOLL_CTL_DEL, fd, nil))
}

// wait waits up to msec milliseconds (-1: no limit) and returns the ready
// events; a wake-up through the eventfd is drained and not returned.
func (p *epoll) wait(msec int) ([]unix.EpollEvent, bool, error) {
	n, err := unix.EpollWait(p.fd, p.events, msec)
	if err != nil {
		if err == unix.EINTR {
			return nil, false, nil
		}
		return nil, false, os.NewSyscallError("epoll_wait", err)
	}
	woken := false
	out := p.events[:0]
	for _, ev := range p.events[:n] {
		if int(ev.Fd) == p.wakeFD {
			var buf [8]byte
			unix.Read(p.wakeFD, buf[:])
			woken = true
			continue
		}
		out = append(out, ev)
	}
	return out, woken, nil
}

// wake makes a wait return at once.
func (p *epoll) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	p.cmu.RLock()
	defer p.cmu.RUnlock()
	if !p.closed {
		unix.Write(p.wakeFD, one[:])
	}
}

func (p *epoll) close() {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	unix.Close(p.wakeFD)
	unix.Close(p.fd)
}
