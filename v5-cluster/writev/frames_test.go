package writev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testFrameHeader is the size of a test frame's header: producer, index
// and payload length, 4 bytes each.
const testFrameHeader = 12

// testFrame returns frame i of producer p: a header naming both, then size
// payload bytes that depend on p, i and their place, so that a frame that
// is cut short, swapped or spliced into another shows when it is parsed.
func testFrame(p, i, size int) []byte {
	f := make([]byte, testFrameHeader+size)
	binary.BigEndian.PutUint32(f[0:], uint32(p))
	binary.BigEndian.PutUint32(f[4:], uint32(i))
	binary.BigEndian.PutUint32(f[8:], uint32(size))
	for k := range size {
		f[testFrameHeader+k] = payloadByte(p, i, k)
	}
	return f
}

func payloadByte(p, i, k int) byte { return byte(p*31 + i*7 + k) }

// parseTestFrame returns the producer and index of a whole test frame.
func parseTestFrame(f []byte) (p, i int, err error) {
	if len(f) < testFrameHeader {
		return 0, 0, fmt.Errorf("frame of %d bytes is shorter than its header", len(f))
	}
	p = int(binary.BigEndian.Uint32(f[0:]))
	i = int(binary.BigEndian.Uint32(f[4:]))
	size := int(binary.BigEndian.Uint32(f[8:]))
	if len(f) != testFrameHeader+size {
		return p, i, fmt.Errorf("frame %d of producer %d is %d bytes, its header says %d", i, p, len(f), testFrameHeader+size)
	}
	for k, c := range f[testFrameHeader:] {
		if c != payloadByte(p, i, k) {
			return p, i, fmt.Errorf("frame %d of producer %d: payload byte %d is %#x, want %#x", i, p, k, c, payloadByte(p, i, k))
		}
	}
	return p, i, nil
}

// frameID names a test frame.
type frameID struct{ p, i int }

// splitTestFrames cuts a stream of test frames apart and checks each.
func splitTestFrames(stream []byte) ([]frameID, error) {
	var ids []frameID
	for len(stream) > 0 {
		if len(stream) < testFrameHeader {
			return ids, fmt.Errorf("the stream ends with %d bytes of a header", len(stream))
		}
		n := testFrameHeader + int(binary.BigEndian.Uint32(stream[8:]))
		if n > len(stream) {
			return ids, fmt.Errorf("the stream ends inside a frame of %d bytes (%d left)", n, len(stream))
		}
		p, i, err := parseTestFrame(stream[:n])
		if err != nil {
			return ids, err
		}
		ids = append(ids, frameID{p, i})
		stream = stream[n:]
	}
	return ids, nil
}

// checkProducerOrder checks that ids hold every frame of producers
// producers, each sending each frames, exactly once and in each producer's
// order.
func checkProducerOrder(t *testing.T, ids []frameID, producers, each int) {
	t.Helper()
	next := make([]int, producers)
	for _, id := range ids {
		if id.p < 0 || id.p >= producers {
			t.Fatalf("frame %d of unknown producer %d", id.i, id.p)
		}
		if id.i != next[id.p] {
			t.Fatalf("producer %d: frame %d arrived where frame %d was due", id.p, id.i, next[id.p])
		}
		next[id.p]++
	}
	for p, n := range next {
		if n != each {
			t.Fatalf("producer %d: %d frames arrived, want %d", p, n, each)
		}
	}
}

// concat joins frames into the stream they make.
func concat(frames [][]byte) []byte {
	var b bytes.Buffer
	for _, f := range frames {
		b.Write(f)
	}
	return b.Bytes()
}

// maxFakeCalls is more write calls than any test needs: a Writer that
// makes more spins, and fails instead of hanging the test.
const maxFakeCalls = 200_000

var errSpinning = errors.New("the writer spins")

// guard wraps a real WriteFunc so that a Writer that spins on it fails
// after maxFakeCalls calls instead of hanging the test.
func guard(write WriteFunc) WriteFunc {
	var calls atomic.Int64
	return func(bufs [][]byte) (int, bool, error) {
		if calls.Add(1) > maxFakeCalls {
			return 0, false, errSpinning
		}
		return write(bufs)
	}
}

// fakeWriter is a WriteFunc with knobs: how much each call takes, whether
// it reports a full socket, when it fails, and a hook that runs inside
// each call. It records what it was given and checks the WriteFunc
// contract: at most IOVMax buffers, never two calls at once.
type fakeWriter struct {
	// mu protects the fields below.
	mu sync.Mutex
	// out is every byte taken, in order.
	out []byte
	// bufs is the number of buffers each call got; taken, the bytes each
	// took.
	bufs  []int
	taken []int
	// limit, if above 0, is the most bytes one call takes.
	limit int
	// blockShort makes a call that takes less than it was given report
	// wouldBlock, as a socket does.
	blockShort bool
	// full makes calls take nothing and report wouldBlock.
	full bool
	// failAt, if above 0, is the call (counting from 1) that fails with
	// err after taking at most failTake bytes.
	failAt   int
	failTake int
	err      error
	// delay is how long each call takes: a slow socket.
	delay time.Duration
	// during, if set, runs inside each call, with the call's number
	// (counting from 1), before the call takes anything. It runs on the
	// Writer's owner, in its Flush, so it may push and ask what only the
	// owner may ask.
	during func(call int)

	inside atomic.Int32
	// broken records a breach of the WriteFunc contract.
	broken atomic.Value
}

func (w *fakeWriter) write(bufs [][]byte) (int, bool, error) {
	if w.inside.Add(1) != 1 {
		w.broken.Store("two write calls at once")
	}
	defer w.inside.Add(-1)
	if len(bufs) == 0 || len(bufs) > IOVMax {
		w.broken.Store(fmt.Sprintf("a write call got %d buffers", len(bufs)))
	}

	w.mu.Lock()
	w.bufs = append(w.bufs, len(bufs))
	call := len(w.bufs)
	if call > maxFakeCalls {
		w.mu.Unlock()
		w.broken.Store(fmt.Sprintf("more than %d write calls: the writer spins", maxFakeCalls))
		return 0, false, errSpinning
	}
	delay, during := w.delay, w.during
	w.mu.Unlock()
	if during != nil {
		during(call)
	}
	if delay > 0 {
		time.Sleep(delay) // a slow socket, not a wait for a state
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.full {
		w.taken = append(w.taken, 0)
		return 0, true, nil
	}
	offered := total(bufs)
	take := offered
	if w.limit > 0 {
		take = min(take, w.limit)
	}
	var err error
	if call == w.failAt {
		take = min(take, w.failTake)
		err = w.err
	}
	left := take
	for _, b := range bufs {
		k := min(left, len(b))
		w.out = append(w.out, b[:k]...)
		left -= k
	}
	w.taken = append(w.taken, take)
	return take, err == nil && w.blockShort && take < offered, err
}

// set changes the writer's knobs between calls.
func (w *fakeWriter) set(f func(w *fakeWriter)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w)
}

// written returns a copy of the bytes taken so far.
func (w *fakeWriter) written() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.out)
}

// calls returns the buffers given to each call so far.
func (w *fakeWriter) calls() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.bufs...)
}

// nonEmptyCalls is the number of calls that took at least one byte.
func (w *fakeWriter) nonEmptyCalls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, k := range w.taken {
		if k > 0 {
			n++
		}
	}
	return n
}

// check fails the test if the Writer broke the WriteFunc contract.
func (w *fakeWriter) check(t *testing.T) {
	t.Helper()
	if msg := w.broken.Load(); msg != nil {
		t.Fatalf("WriteFunc contract broken: %s", msg)
	}
}

// frameKey names a frame by its backing array, so that empty frames with
// arrays of their own (make([]byte, 0, 1)) have names too.
func frameKey(f []byte) *byte { return unsafe.SliceData(f) }

// releaseLog records the frames a Writer releases, by their backing
// arrays, so a frame released twice, or never, shows.
type releaseLog struct {
	// mu protects the fields below.
	mu    sync.Mutex
	count map[*byte]int
	order [][]byte
	// written, if set, is asked at each release whether the frame has
	// been written whole; it returns a complaint or "".
	written func(f []byte) string
	bad     string
}

func newReleaseLog() *releaseLog { return &releaseLog{count: make(map[*byte]int)} }

func (r *releaseLog) release(f []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if frameKey(f) == nil {
		r.bad = "a frame without a backing array was released"
		return
	}
	r.count[frameKey(f)]++
	r.order = append(r.order, f)
	if r.written != nil && r.bad == "" {
		r.bad = r.written(f)
	}
}

// requireWrittenBeforeRelease makes r check that each of frames is in w's
// output, whole, by the time it is released. Frames released unwritten
// (dropped by Close) must not be checked with it.
func (r *releaseLog) requireWrittenBeforeRelease(w *fakeWriter, frames [][]byte) {
	ends := make(map[*byte]int, len(frames))
	end := 0
	for _, f := range frames {
		end += len(f)
		ends[frameKey(f)] = end
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written = func(f []byte) string {
		if got := len(w.written()); got < ends[frameKey(f)] {
			return fmt.Sprintf("a frame ending at byte %d was released when %d bytes were written", ends[frameKey(f)], got)
		}
		return ""
	}
}

// checkOnce fails the test unless every frame was released exactly once
// and nothing else was.
func (r *releaseLog) checkOnce(t *testing.T, frames [][]byte) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bad != "" {
		t.Fatal(r.bad)
	}
	for k, f := range frames {
		if n := r.count[frameKey(f)]; n != 1 {
			t.Fatalf("frame %d was released %d times, want once", k, n)
		}
	}
	if len(r.order) != len(frames) {
		t.Fatalf("%d releases for %d frames", len(r.order), len(frames))
	}
}

// checkOrder fails the test unless the frames were released in this order.
func (r *releaseLog) checkOrder(t *testing.T, frames [][]byte) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) != len(frames) {
		t.Fatalf("%d frames released, want %d", len(r.order), len(frames))
	}
	for k := range frames {
		if frameKey(r.order[k]) != frameKey(frames[k]) {
			t.Fatalf("release %d is not frame %d", k, k)
		}
	}
}

// released returns the number of releases so far.
func (r *releaseLog) released() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

// releasedFrames returns the frames released so far, in order.
func (r *releaseLog) releasedFrames() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.order...)
}

// allowUnwritten stops the check requireWrittenBeforeRelease set up, for
// the frames that are dropped.
func (r *releaseLog) allowUnwritten() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written = nil
}
