package mux

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v4-epoll-batch/codec"
	"myrpc/v4-epoll-batch/writev"
)

// ErrStreamsExhausted is returned by Send when the connection already
// carries its maximum number of calls.
var ErrStreamsExhausted = errors.New("rpc: connection carries its maximum number of calls")

// ErrNotRead fails the calls still in flight when a server closes a
// connection cleanly after a response marked connection: close. A server
// that marks a response reads no more requests, answers those it has read,
// and then closes: a call that got no answer was never read, and can be
// sent again on another connection without running twice.
var ErrNotRead = errors.New("the server closed the connection without reading the request")

// ErrNotSent fails a call whose request was still queued, not one byte of
// it written, when the connection's writing stopped: the server never saw
// it, and it can be sent again on another connection.
var ErrNotSent = errors.New("the request was never sent: the connection stopped writing")

// Done receives a call's response frame, or the error that ended it. It
// runs on the connection's reader goroutine (or on the goroutine that broke
// the connection), so it must return quickly and never block.
type Done func(f codec.Frame, err error)

// Conn is a connection that carries many calls at once.
type Conn struct {
	nc         net.Conn
	maxFrame   int
	maxSeq     uint32
	maxStreams int
	log        *slog.Logger
	// onRelease is called, without locks, whenever a call leaves the
	// connection, and onBroken once when the connection breaks.
	onRelease func(*Conn)
	onBroken  func(*Conn)

	// out queues the calls' frames; the connection's writer goroutine,
	// woken through kick, writes them, several per writev. No call waits
	// for another's write.
	out  *writev.Writer
	kick chan struct{}

	// wmu is held by whoever writes out: the writer goroutine, or a call
	// alone on the connection, which writes its frame itself with
	// tryWrite, a write that never waits (nil where there is none).
	wmu      sync.Mutex
	tryWrite writev.WriteFunc
	// alone counts the calls that wrote their frame themselves, ownReads
	// those that read their response themselves.
	alone    atomic.Uint64
	ownReads atomic.Uint64
	// pushing counts the Sends between their look at broken and sendErr
	// and the end of their Push. The queue is settled only once none is
	// left (waitPushes): a frame pushed before it is settled with the
	// others, and none is pushed after it. beforePush, nil but in tests,
	// runs in that gap.
	pushing    atomic.Int32
	beforePush func()

	// mu protects the fields below.
	mu      sync.Mutex
	pending map[uint32]Done
	next    uint32
	// broken is the error that broke the connection; calls fail with it.
	broken error
	// sendErr is the error of a write that failed. No request is sent
	// after it, but the calls sent before it wait for their answers; the
	// connection breaks when the last of them has left.
	sendErr error
	// lastUsed is when the last call left, for the group's idle timeout.
	lastUsed time.Time

	// streams is len(pending), readable without mu.
	streams atomic.Int32
	// dropped counts responses that no call was waiting for.
	dropped atomic.Uint64
	// retired is set when the server is about to close the connection:
	// the calls on it finish, but no new call is sent on it.
	retired atomic.Bool
	// readerDone is closed when the reader goroutine has exited.
	readerDone chan struct{}

	// stop is closed when the connection breaks, to end the writer
	// goroutine; writerDone is closed when it has.
	stop       chan struct{}
	writerDone chan struct{}

	// in holds what has been read of the responses. Whoever reads the
	// connection owns it: the reader goroutine, or a call alone on the
	// connection that reads its own response (ReadOwn) while the reader
	// goroutine waits. readBy, under mu, says which; ownSeq, under mu, is
	// the call that reads.
	in     *inbox
	readBy reader
	ownSeq uint32
	// unread is readBy == parked, readable without mu.
	unread atomic.Bool
	// yielded tells a call that the reader goroutine has stopped reading
	// for it; resume gives the reading back. idle gives it back when no
	// call has read the connection for idleRead.
	yielded  chan struct{}
	resume   chan struct{}
	idle     *time.Timer
	idleRead time.Duration
}

// reader says who reads a connection.
type reader int

const (
	byReader reader = iota // the reader goroutine
	yielding               // a call has asked the reader goroutine to stop
	byCall                 // a call alone on the connection, in ReadOwn
	parked                 // nobody: the reader goroutine waits for resume
)

// idleRead is how long the reader goroutine waits, after a call has read
// its own response, before it reads the connection again: long enough for
// a caller that makes one call after another to find the connection
// unread, so that it needs not stop the reader goroutine, short enough
// that an idle connection's end is seen at once.
const idleRead = time.Millisecond

// aLongTimeAgo is a deadline in the past: setting it makes a blocked read
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// newConn wraps nc and starts its reader.
func newConn(nc net.Conn, cfg Config, onRelease, onBroken func(*Conn)) *Conn {
	c := &Conn{
		nc:         nc,
		maxFrame:   cfg.MaxFrameSize,
		maxSeq:     cfg.MaxSeq,
		maxStreams: cfg.MaxStreams,
		log:        cfg.Logger,
		onRelease:  onRelease,
		onBroken:   onBroken,
		pending:    make(map[uint32]Done),
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		lastUsed:   time.Now(),
		readerDone: make(chan struct{}),
		in:         newInbox(nc, cfg.MaxFrameSize),
		yielded:    make(chan struct{}, 1),
		resume:     make(chan struct{}, 1),
		idleRead:   idleRead,
	}
	c.idle = time.AfterFunc(time.Hour, c.resumeIdle)
	c.idle.Stop()
	write := writev.Conn(nc)
	c.out = writev.NewWriter(func(bufs [][]byte) (int, bool, error) {
		// A batch's write is bounded by the calls it carries: when the
		// last of their deadlines has passed, nobody waits for it.
		nc.SetWriteDeadline(c.out.Deadline())
		return write(bufs)
	}, writev.Options{})
	c.tryWrite = writev.TryConn(nc)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// Send gives the request frame a sequence id, registers done under it, and
// queues the frame for the connection's writer; a call alone on the
// connection writes it at once itself, if the socket takes it without
// waiting. It returns the id, for Cancel. Send never waits: the call's context bounds the call, and the
// writer bounds a write by the deadlines of the calls it carries. A call
// ends exactly once: Send returns an error only when done will never run;
// once it has returned nil, done runs with the response or with the error
// that ended the call: ErrNotSent if none of its frame was written, which
// allows it to be sent again elsewhere. written reports, with an error,
// whether any byte of the frame may have reached the server.
// frame must be a whole request frame; Send overwrites its sequence id, and
// the frame must not change until the call has ended, since it may wait in
// the queue.
func (c *Conn) Send(ctx context.Context, frame []byte, done Done) (seq uint32, written bool, err error) {
	return c.send(ctx, frame, done, false)
}

// SendOwn is Send for a caller that calls ReadOwn with the call's id next.
func (c *Conn) SendOwn(ctx context.Context, frame []byte, done Done) (seq uint32, written bool, err error) {
	return c.send(ctx, frame, done, true)
}

func (c *Conn) send(ctx context.Context, frame []byte, done Done, own bool) (seq uint32, written bool, err error) {
	c.mu.Lock()
	if err := cmp.Or(c.broken, c.sendErr); err != nil {
		c.mu.Unlock()
		return 0, false, err
	}
	if len(c.pending) >= c.maxStreams {
		c.mu.Unlock()
		return 0, false, ErrStreamsExhausted
	}
	seq = c.nextSeq()
	c.pending[seq] = done
	c.streams.Add(1)
	c.pushing.Add(1)
	if !own {
		c.resumeLocked() // someone must read the response
	}
	c.mu.Unlock()

	binary.BigEndian.PutUint32(frame[4:8], seq)
	deadline, _ := ctx.Deadline()
	if c.beforePush != nil {
		c.beforePush()
	}
	_, err = c.out.Push(frame, deadline)
	c.pushing.Add(-1)
	if err != nil {
		// Not while this Send counts in pushing, which holds the
		// settling of the queue back; kept so that a frame the queue
		// refuses can never be taken for sent.
		if !c.Cancel(seq) {
			return seq, true, nil // done has run, or will, with the reason
		}
		c.mu.Lock()
		err = cmp.Or(c.broken, c.sendErr, status.Errorf(codes.Unavailable, "rpc: send: %w", err))
		c.mu.Unlock()
		return 0, false, err
	}
	if c.tryWrite != nil && c.streams.Load() == 1 && c.wmu.TryLock() {
		// Alone on the connection there is nothing to batch with: the
		// frame leaves now, without the hop to the writer goroutine. What
		// the socket does not take at once is left to the writer.
		c.alone.Add(1)
		_, wouldBlock, err := c.out.FlushWith(c.tryWrite)
		if err != nil {
			c.writeFailed(err)
		}
		c.wmu.Unlock()
		if err != nil || !wouldBlock {
			return seq, true, nil
		}
	}
	select {
	case c.kick <- struct{}{}:
	default: // the writer is awake already
	}
	return seq, true, nil
}

// writeLoop is the connection's writer: it writes what the calls queue,
// everything queued at once, until the connection breaks or a write fails.
func (c *Conn) writeLoop() {
	defer close(c.writerDone)
	for {
		select {
		case <-c.kick:
		case <-c.stop:
			return // fail has settled the queue
		}
		// Let the callers that are ready to run queue their frames first:
		// on a busy connection the writev then carries them all, and on a
		// quiet one nobody else is runnable and this returns at once.
		runtime.Gosched()
		c.wmu.Lock()
		_, _, err := c.out.Flush()
		if err != nil {
			c.writeFailed(err)
		}
		c.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// writeFailed stops the connection's sending after a write failed; the
// caller holds wmu. The
// calls whose frames were written whole may have run, and wait for their
// answers; the call whose frame was cut may have reached the server, as
// far as anyone can tell, and fails; the calls whose frames were never
// begun fail with ErrNotSent, to be sent again elsewhere.
func (c *Conn) writeFailed(err error) {
	err = status.Errorf(codes.Unavailable, "rpc: send: %w", err)
	// First no new call may come: the connection leaves the group, and
	// Send fails at once.
	c.stopSending(err)
	c.waitPushes()
	c.settleQueue(err)
}

// waitPushes waits for the Sends that found the connection whole to have
// pushed their frames: none can start once broken or sendErr is set, and
// none waits for anything while it pushes.
func (c *Conn) waitPushes() {
	for c.pushing.Load() > 0 {
		runtime.Gosched()
	}
}

// settleQueue closes the queue and ends the calls whose frames it still
// held: the first with err if a part of its frame was written, the others
// with ErrNotSent. The caller holds wmu.
func (c *Conn) settleQueue(err error) {
	left, started := c.out.Close()
	for i, f := range left {
		seq := binary.BigEndian.Uint32(f[4:8])
		c.mu.Lock()
		done, ok := c.pending[seq]
		if ok {
			c.remove(seq)
		}
		drained := c.drainedLocked()
		c.mu.Unlock()
		if ok {
			if i == 0 && started {
				done(codec.Frame{}, err)
			} else {
				done(codec.Frame{}, status.Errorf(codes.Unavailable, "rpc: %w", ErrNotSent))
			}
			c.onRelease(c)
		}
		if drained != nil {
			c.failWriting(drained)
		}
	}
}

// nextSeq returns the next sequence id that no call in flight holds,
// counting from 1 to maxSeq and then wrapping. The caller holds mu, and
// fewer than maxStreams <= maxSeq calls are in flight, so one is free.
func (c *Conn) nextSeq() uint32 {
	for {
		if c.next >= c.maxSeq {
			c.next = 0
		}
		c.next++
		if _, busy := c.pending[c.next]; !busy {
			return c.next
		}
	}
}

// Cancel removes a call from the pending table: its response, if it still
// comes, is dropped. It reports whether the call was still pending, that
// is, whether its Done will now never run.
func (c *Conn) Cancel(seq uint32) bool {
	c.mu.Lock()
	_, ok := c.pending[seq]
	if ok {
		c.remove(seq)
		if c.readBy == byCall && c.ownSeq == seq {
			// The call reads its own response: stop its read.
			c.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
	drained := c.drainedLocked()
	c.mu.Unlock()
	if ok {
		c.onRelease(c)
	}
	if drained != nil {
		c.fail(drained)
	}
	return ok
}

// remove deletes a pending call; the caller holds mu.
func (c *Conn) remove(seq uint32) {
	delete(c.pending, seq)
	c.streams.Add(-1)
	c.lastUsed = time.Now()
}

// drainedLocked returns the error of the write that stopped sending, once
// the last call sent before it has left, and nil otherwise: the connection
// then has nothing more to wait for. The caller holds mu.
func (c *Conn) drainedLocked() error {
	if c.broken == nil && c.sendErr != nil && len(c.pending) == 0 {
		return c.sendErr
	}
	return nil
}

// stopSending stops the connection's requests after a write failed; the
// caller holds wmu. The
// calls sent before the failed write may have been run and answered: the
// server's responses can be in the socket already, or on their way. So the
// connection is not broken at once. It leaves the group, so that no call
// picks it; its write side is shut, so that the server, having read to the
// end, answers what it has read and closes; and the reader goes on until
// then, failing the calls still waiting when the connection ends. With no
// call waiting, it breaks at once.
func (c *Conn) stopSending(err error) {
	c.mu.Lock()
	if c.broken != nil || c.sendErr != nil {
		c.mu.Unlock()
		return
	}
	if len(c.pending) == 0 {
		c.mu.Unlock()
		c.failWriting(err)
		return
	}
	c.sendErr = err
	c.mu.Unlock()
	c.onBroken(c)
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// readLoop reads responses until the connection breaks, and delivers each
// to its call. It stops reading while a call reads its own (ReadOwn).
func (c *Conn) readLoop() {
	defer close(c.readerDone)
	for {
		f, err := c.in.next()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.mu.Lock()
				yield := c.readBy == yielding
				c.mu.Unlock()
				if yield {
					c.yielded <- struct{}{}
					select {
					case <-c.resume:
						continue
					case <-c.stop:
						return
					}
				}
			}
			c.readFailed(err)
			return
		}
		c.deliver(f)
	}
}

// ReadOwn reads the connection on the caller's goroutine until the call
// with sequence id seq has ended, if the call, sent with SendOwn, is alone
// on the connection: its response then comes to it straight from the
// socket, not through the reader goroutine, whose hand-off would wake a
// second goroutine for every call. The reader goroutine stops between two
// reads while the call reads (a read cut short loses nothing: what it read
// waits in the inbox), and goes on once the connection has been left idle
// for idleRead, or as soon as a call is sent with Send, so that the
// connection is still read between calls. A caller that makes one call
// after another finds it unread and takes it without stopping anyone.
// ReadOwn returns at once if other calls share the connection, or another
// call reads it. Whatever ends the call stops the read: its response,
// Cancel, or the connection breaking.
func (c *Conn) ReadOwn(seq uint32) {
	if c.streams.Load() != 1 && !c.unread.Load() {
		return // shared, and read by someone: nothing to do (no lock)
	}
	c.mu.Lock()
	if _, ok := c.pending[seq]; !ok || c.broken != nil || c.tryWrite == nil || len(c.pending) != 1 {
		c.resumeLocked()
		c.mu.Unlock()
		return
	}
	switch c.readBy {
	case parked: // nobody reads: the call takes the inbox as it is
	case byReader:
		c.readBy = yielding
		c.nc.SetReadDeadline(aLongTimeAgo) // stops the reader goroutine's read
		c.mu.Unlock()
		select {
		case <-c.yielded:
		case <-c.readerDone:
			return // the connection broke: the call has ended
		}
		c.mu.Lock()
		c.nc.SetReadDeadline(time.Time{})
	default: // another call reads
		c.mu.Unlock()
		return
	}
	c.readBy, c.ownSeq = byCall, seq
	c.unread.Store(false)
	_, waiting := c.pending[seq]
	c.mu.Unlock()
	c.ownReads.Add(1)
	for waiting {
		f, err := c.in.next()
		if err == nil {
			c.deliver(f)
		} else if !errors.Is(err, os.ErrDeadlineExceeded) {
			c.readFailed(err)
		}
		c.mu.Lock()
		_, waiting = c.pending[seq]
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.readBy, c.ownSeq = parked, 0
	c.unread.Store(true)
	c.nc.SetReadDeadline(time.Time{})
	if len(c.pending) > 0 {
		c.resumeLocked() // calls came meanwhile: their responses need a reader
	} else {
		c.idle.Reset(c.idleRead)
	}
	c.mu.Unlock()
}

// resumeLocked gives the reading back to the reader goroutine if nobody
// reads the connection. The caller holds mu.
func (c *Conn) resumeLocked() {
	if c.readBy == parked {
		c.readBy = byReader
		c.unread.Store(false)
		c.resume <- struct{}{}
	}
}

// resumeIdle gives the reading back to the reader goroutine when no call
// has read the connection for idleRead.
func (c *Conn) resumeIdle() {
	c.mu.Lock()
	c.resumeLocked()
	c.mu.Unlock()
}

// deliver hands a response frame to the call waiting for it.
func (c *Conn) deliver(f codec.Frame) {
	if len(f.Meta) > 0 && closing(f.Meta) {
		// The server reads nothing more on this connection: no new
		// call goes on it, and when the server closes it, the calls
		// still waiting were never read. A response nobody waits for
		// says so too. (A plain reply's meta is empty: no cost.)
		c.retired.Store(true)
	}
	c.mu.Lock()
	done, ok := c.pending[f.Seq]
	if ok {
		c.remove(f.Seq)
	}
	drained := c.drainedLocked()
	c.mu.Unlock()
	if !ok {
		// Late (its caller gave up), duplicated, or never asked for:
		// never handed to another call.
		c.dropped.Add(1)
		c.log.Debug("rpc: response nobody waits for", "seq", f.Seq)
		return
	}
	done(f, nil)
	c.onRelease(c)
	if drained != nil {
		c.fail(drained)
	}
}

// readFailed breaks the connection after a read failed.
func (c *Conn) readFailed(err error) {
	if c.retired.Load() && errors.Is(err, io.EOF) {
		// The server marked a response and closed after it (the mark
		// was read before this read began).
		err = status.Errorf(codes.Unavailable, "rpc: %w", ErrNotRead)
	} else {
		err = readError(err)
	}
	c.fail(err)
}

// closing reports whether a response's meta carries the connection: close
// mark.
func closing(metaBytes []byte) bool {
	rm, err := codec.DecodeResponseMeta(metaBytes)
	return err == nil && rpc.Closing(rm.Metadata)
}

// readError gives the reader's error its status: a response over the
// limit is ResourceExhausted, a bad frame Internal, anything else means the
// connection broke.
func readError(err error) error {
	switch {
	case errors.Is(err, codec.ErrFrameTooLarge), errors.Is(err, codec.ErrMetaTooLarge):
		return status.Errorf(codes.ResourceExhausted, "rpc: receive: %w", err)
	case errors.Is(err, codec.ErrBadMagic), errors.Is(err, codec.ErrBadVersion), errors.Is(err, codec.ErrBadType):
		return status.Errorf(codes.Internal, "rpc: receive: %w", err)
	}
	return status.Errorf(codes.Unavailable, "rpc: connection broken: %w", err)
}

// fail breaks the connection: it closes it, and fails every call in flight
// on it with err, except the calls whose frames were still queued, not a
// byte of them written, which fail with ErrNotSent, to be sent again
// elsewhere. Later Sends fail with err too. The caller must not hold wmu
// (failWriting is fail for one that does).
func (c *Conn) fail(err error) { c.breakWith(err, false) }

// failWriting is fail for a caller that holds wmu (writeFailed, and
// settleQueue).
func (c *Conn) failWriting(err error) { c.breakWith(err, true) }

func (c *Conn) breakWith(err error, holdsWmu bool) {
	c.mu.Lock()
	if c.broken != nil {
		c.mu.Unlock()
		return
	}
	c.broken = err
	close(c.stop)
	c.idle.Stop()
	left := c.sendErr != nil // stopSending took it out of the group
	c.mu.Unlock()
	c.nc.Close()
	// The queue is settled before the calls are taken: the calls whose
	// frames it holds were never sent (a write under way ends with the
	// close, its own failure settling the queue first), and a Send that
	// found the connection whole before broken was set has pushed its
	// frame by then.
	c.waitPushes()
	if holdsWmu {
		c.settleQueue(err)
	} else {
		c.wmu.Lock()
		c.settleQueue(err)
		c.wmu.Unlock()
	}
	c.mu.Lock()
	pending := c.pending
	c.pending = make(map[uint32]Done)
	c.streams.Store(0)
	c.mu.Unlock()
	// Out of the group first, so that a call retried from a Done below
	// does not pick this connection again.
	if !left {
		c.onBroken(c)
	}
	for _, done := range pending {
		done(codec.Frame{}, err)
	}
	for range pending {
		c.onRelease(c)
	}
}

// Close closes the connection, failing the calls in flight on it.
func (c *Conn) Close() error {
	c.fail(status.New(codes.Unavailable, "rpc: connection closed by the client"))
	<-c.readerDone
	<-c.writerDone
	return nil
}

// closeRetired closes a retired connection that carried no call when its
// group let it go. A call that a Pick made before the retirement may still
// have gone on it since; its request was written after the server's
// connection: close mark had arrived, so the server never read it, and the
// call fails with ErrNotRead, to be sent again elsewhere.
func (c *Conn) closeRetired() {
	c.fail(status.Errorf(codes.Unavailable, "rpc: %w", ErrNotRead))
	<-c.readerDone
	<-c.writerDone
}

// Retire stops new calls from being sent on the connection, which the
// server is about to close. The reader retires a connection when a
// response carries the connection: close mark. The calls in flight on it
// finish, and the connection leaves the group when the server closes it.
func (c *Conn) Retire() { c.retired.Store(true) }

// Streams returns the number of calls in flight on the connection.
func (c *Conn) Streams() int { return int(c.streams.Load()) }

// Dropped returns the number of responses that no call was waiting for.
func (c *Conn) Dropped() uint64 { return c.dropped.Load() }

// ReadAlone returns the number of calls that, alone on the connection,
// read their own response (ReadOwn).
func (c *Conn) ReadAlone() uint64 { return c.ownReads.Load() }

// SentAlone returns the number of calls that, alone on the connection,
// wrote their frame themselves instead of queueing it for the writer
// goroutine.
func (c *Conn) SentAlone() uint64 { return c.alone.Load() }

// idleSince returns when the connection last carried a call, or the zero
// time if it carries one now or is broken.
func (c *Conn) idleSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) > 0 || c.broken != nil {
		return time.Time{}
	}
	return c.lastUsed
}

// maxSeqDefault is the largest sequence id: the whole uint32 range but 0.
const maxSeqDefault = math.MaxUint32
