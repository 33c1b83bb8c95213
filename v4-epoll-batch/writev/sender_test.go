package writev

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// probe is a Sender over a fakeWriter, with its releases logged and its
// Blocked and Drained calls counted.
type probe struct {
	s       *Sender
	w       *fakeWriter
	rel     *releaseLog
	blocked atomic.Int32
	drained atomic.Int32
}

func newProbe(w *fakeWriter, c *Counters) *probe {
	p := &probe{w: w, rel: newReleaseLog()}
	p.s = NewSender(w.write, Options{
		Release:  p.rel.release,
		Blocked:  func() { p.blocked.Add(1) },
		Drained:  func() { p.drained.Add(1) },
		Counters: c,
	})
	return p
}

// sendHeld sends frames so that they leave in batches: the first Send
// becomes the flusher and its first write is held while this goroutine
// queues the rest; then the write goes on. It checks what each queuing
// Send reports and returns the first Send's error.
func sendHeld(t *testing.T, p *probe, frames [][]byte) error {
	t.Helper()
	wait, open := p.w.hold()
	first := make(chan error, 1)
	go func() {
		_, err := p.s.Send(frames[0])
		first <- err
	}()
	wait()
	queued := 0
	for k, f := range frames[1:] {
		queued += len(f)
		got, err := p.s.Send(f)
		if err != nil || got != queued {
			// Not Fatal: the held write must be let go first.
			t.Errorf("Send of frame %d while a flush is in progress = %d, %v; want %d, nil", k+1, got, err, queued)
		}
	}
	if n := len(p.w.calls()); n != 1 {
		t.Errorf("queuing Sends made %d write calls, want only the held one", n)
	}
	open()
	return <-first
}

// flushUntilIdle plays the poller: it calls Flush, as on EPOLLOUT, until
// the sender is idle, at most limit times, and returns how many it took.
func flushUntilIdle(t *testing.T, s *Sender, limit int) int {
	t.Helper()
	n := 0
	for ; !s.Idle(); n++ {
		if n == limit {
			t.Fatalf("not idle after %d Flush calls", limit)
		}
		if err := s.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
	return n
}

// sizedFrames returns n test frames of producer 0 with payloads from 0 to
// 299 bytes.
func sizedFrames(n int) [][]byte {
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = testFrame(0, i, i*37%300)
	}
	return frames
}

// requireWrittenBeforeRelease makes p's release log check that each frame
// is in the writer's output, whole, by the time it is released.
func requireWrittenBeforeRelease(p *probe, frames [][]byte) {
	ends := make(map[*byte]int, len(frames))
	end := 0
	for _, f := range frames {
		end += len(f)
		ends[&f[0]] = end
	}
	p.rel.written = func(f []byte) string {
		if got := len(p.w.written()); got < ends[&f[0]] {
			return fmt.Sprintf("a frame ending at byte %d was released when %d bytes were written", ends[&f[0]], got)
		}
		return ""
	}
}

func TestSenderSendsInOrder(t *testing.T) {
	tests := []struct {
		name   string
		frames int
		held   bool // queue them behind a held write, so they leave in batches
	}{
		{"one frame", 1, false},
		{"one at a time", 100, false},
		{"batched", 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(&fakeWriter{}, nil)
			frames := sizedFrames(tt.frames)
			requireWrittenBeforeRelease(p, frames)
			if tt.held {
				if err := sendHeld(t, p, frames); err != nil {
					t.Fatalf("Send: %v", err)
				}
			} else {
				for k, f := range frames {
					queued, err := p.s.Send(f)
					if err != nil || queued != 0 {
						t.Fatalf("Send of frame %d = %d, %v; want 0, nil", k, queued, err)
					}
				}
			}
			p.w.check(t)
			if got, want := p.w.written(), concat(frames); string(got) != string(want) {
				t.Fatalf("wrote %d bytes that differ from the %d bytes of the frames", len(got), len(want))
			}
			p.rel.checkOnce(t, frames)
			p.rel.checkOrder(t, frames)
			if !p.s.Idle() || p.s.Pending() != 0 {
				t.Fatalf("Idle() = %v, Pending() = %d after every Send returned", p.s.Idle(), p.s.Pending())
			}
			writes, nframes := p.s.Stats()
			if nframes != uint64(tt.frames) || writes != uint64(len(p.w.calls())) {
				t.Fatalf("Stats() = %d writes, %d frames; want %d, %d", writes, nframes, len(p.w.calls()), tt.frames)
			}
			if tt.held && writes != 2 {
				t.Fatalf("%d frames queued behind a held write left in %d writes, want 2", tt.frames, writes)
			}
			if p.blocked.Load() != 0 {
				t.Fatalf("Blocked called %d times on a writer that never blocks", p.blocked.Load())
			}
		})
	}
}

// TestSenderBatchesAtMostIOVMax queues 3000 frames behind a held write:
// they must leave in writes of at most IOVMax buffers, as full as allowed.
func TestSenderBatchesAtMostIOVMax(t *testing.T) {
	p := newProbe(&fakeWriter{}, nil)
	frames := make([][]byte, 3000)
	for i := range frames {
		frames[i] = testFrame(0, i, i%5)
	}
	if err := sendHeld(t, p, frames); err != nil {
		t.Fatalf("Send: %v", err)
	}
	p.w.check(t)
	calls := p.w.calls()
	want := []int{1, IOVMax, IOVMax, 2999 - 2*IOVMax}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("write calls got %v buffers, want %v", calls, want)
	}
	ids, err := splitTestFrames(p.w.written())
	if err != nil {
		t.Fatal(err)
	}
	checkProducerOrder(t, ids, 1, len(frames))
	p.rel.checkOnce(t, frames)
	p.rel.checkOrder(t, frames)
	if writes, n := p.s.Stats(); writes != 4 || n != 3000 {
		t.Fatalf("Stats() = %d writes, %d frames; want 4, 3000", writes, n)
	}
}

// TestSenderShortWrites has the writer take a few bytes per call, cutting
// frames anywhere: the sender must go on from where each call stopped,
// either at once or, when the writer says the socket is full, on Flush.
func TestSenderShortWrites(t *testing.T) {
	tests := []struct {
		name       string
		limit      int
		blockShort bool
	}{
		{"whole batches", 0, false},
		{"1 byte per call", 1, false},
		{"7 bytes per call", 7, false},
		{"100 bytes per call", 100, false},
		{"4 KiB per call", 4096, false},
		{"1 byte per call, then full", 1, true},
		{"7 bytes per call, then full", 7, true},
		{"100 bytes per call, then full", 100, true},
		{"4 KiB per call, then full", 4096, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(&fakeWriter{limit: tt.limit, blockShort: tt.blockShort}, nil)
			frames := sizedFrames(60)
			stream := concat(frames)
			requireWrittenBeforeRelease(p, frames)
			if err := sendHeld(t, p, frames); err != nil {
				t.Fatalf("Send: %v", err)
			}
			flushes := flushUntilIdle(t, p.s, len(stream)+1)
			if !tt.blockShort && flushes != 0 {
				t.Fatalf("the sender needed %d Flush calls with a writer that never blocks", flushes)
			}
			if tt.blockShort && tt.limit < len(stream) && int(p.blocked.Load()) != flushes {
				t.Fatalf("Blocked called %d times for %d Flush calls, want one park per Flush", p.blocked.Load(), flushes)
			}
			p.w.check(t)
			if got := p.w.written(); string(got) != string(stream) {
				ids, err := splitTestFrames(got)
				t.Fatalf("wrote %d bytes that differ from the %d bytes of the frames; frames %v, %v", len(got), len(stream), ids, err)
			}
			p.rel.checkOnce(t, frames)
			p.rel.checkOrder(t, frames)
			writes, n := p.s.Stats()
			if n != uint64(len(frames)) || writes != uint64(p.w.nonEmptyCalls()) {
				t.Fatalf("Stats() = %d writes, %d frames; want %d, %d", writes, n, p.w.nonEmptyCalls(), len(frames))
			}
			if p.drained.Load() == 0 {
				t.Fatal("Drained was never called")
			}
		})
	}
}

// TestSenderWouldBlockParks checks the parked state: a full socket stops
// the flush, later Sends only queue, and Flush resumes from where it
// stopped.
func TestSenderWouldBlockParks(t *testing.T) {
	w := &fakeWriter{full: true}
	p := newProbe(w, nil)
	frames := sizedFrames(10)

	if queued, err := p.s.Send(frames[0]); err != nil || queued != 0 {
		t.Fatalf("Send on a full socket = %d, %v; want 0, nil", queued, err)
	}
	if p.blocked.Load() != 1 || p.s.state.Load() != parked {
		t.Fatalf("after a write that would block: Blocked called %d times, state %d; want 1, parked", p.blocked.Load(), p.s.state.Load())
	}
	queued := 0
	for k, f := range frames[1:] {
		queued += len(f)
		if got, err := p.s.Send(f); err != nil || got != queued {
			t.Fatalf("Send of frame %d while parked = %d, %v; want %d, nil", k+1, got, err, queued)
		}
	}
	if n := len(w.calls()); n != 1 {
		t.Fatalf("Sends to a parked sender made %d write calls in all, want 1", n)
	}
	if p.blocked.Load() != 1 || p.drained.Load() != 0 || p.s.Idle() || p.s.Pending() != queued {
		t.Fatalf("parked: Blocked %d, Drained %d, Idle %v, Pending %d; want 1, 0, false, %d",
			p.blocked.Load(), p.drained.Load(), p.s.Idle(), p.s.Pending(), queued)
	}

	// A wake-up while the socket is still full costs one write call.
	if err := p.s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if n := len(w.calls()); n != 2 || p.blocked.Load() != 2 || p.s.state.Load() != parked {
		t.Fatalf("a Flush on a full socket: %d write calls, Blocked %d, state %d; want 2, 2, parked", n, p.blocked.Load(), p.s.state.Load())
	}

	w.set(func(w *fakeWriter) { w.full = false })
	if err := p.s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := w.written(); string(got) != string(concat(frames)) {
		t.Fatalf("wrote %q, want the frames in order", got)
	}
	if !p.s.Idle() || p.drained.Load() != 1 {
		t.Fatalf("after the resumed flush: Idle %v, Drained %d; want true, 1", p.s.Idle(), p.drained.Load())
	}
	p.rel.checkOnce(t, frames)
	p.rel.checkOrder(t, frames)

	// Flush with nothing parked does nothing.
	calls := len(w.calls())
	if err := p.s.Flush(); err != nil || len(w.calls()) != calls {
		t.Fatalf("Flush on an idle sender = %v and made %d write calls", err, len(w.calls())-calls)
	}
}

func TestSenderDrained(t *testing.T) {
	tests := []struct {
		name    string
		frames  int
		held    bool
		drained int32
	}{
		{"one Send", 1, false, 1},
		{"Sends one after another", 5, false, 5},
		{"one batch", 20, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &fakeWriter{}
			var s *Sender
			var drained atomic.Int32
			var bad atomic.Value
			s = NewSender(w.write, Options{Drained: func() {
				drained.Add(1)
				if s.Pending() != 0 || s.state.Load() != idle {
					bad.Store(fmt.Sprintf("Drained called with %d bytes pending, state %d", s.Pending(), s.state.Load()))
				}
			}})
			p := &probe{s: s, w: w, rel: newReleaseLog()}
			frames := sizedFrames(tt.frames)
			if tt.held {
				if err := sendHeld(t, p, frames); err != nil {
					t.Fatal(err)
				}
			} else {
				for _, f := range frames {
					if _, err := s.Send(f); err != nil {
						t.Fatal(err)
					}
				}
			}
			if msg := bad.Load(); msg != nil {
				t.Fatal(msg)
			}
			if got := drained.Load(); got != tt.drained {
				t.Fatalf("Drained called %d times, want %d", got, tt.drained)
			}
		})
	}
}

// TestSenderTakesFrameQueuedAsFlushEnds covers the frame whose Push lands
// after the flusher's last Take and whose Send still saw the flush in
// progress, so left the frame to it: the flusher, going idle, must look
// again and send it. Drained runs in that window, so the test pushes there.
func TestSenderTakesFrameQueuedAsFlushEnds(t *testing.T) {
	tests := []struct {
		name string
		late int // frames pushed in the window
	}{
		{"one frame", 1},
		{"several frames", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &fakeWriter{}
			frames := sizedFrames(1 + tt.late)
			var s *Sender
			var once sync.Once
			s = NewSender(w.write, Options{Drained: func() {
				once.Do(func() {
					for _, f := range frames[1:] {
						s.q.Push(f)
					}
				})
			}})
			if _, err := s.Send(frames[0]); err != nil {
				t.Fatal(err)
			}
			if got := w.written(); string(got) != string(concat(frames)) {
				t.Fatalf("wrote %d bytes, want the %d bytes of all %d frames", len(got), len(concat(frames)), len(frames))
			}
			if !s.Idle() {
				t.Fatalf("not Idle: %d bytes left queued", s.Pending())
			}
		})
	}
}

func TestSenderClose(t *testing.T) {
	tests := []struct {
		name string
		// run sends frames and closes the sender, and returns the bytes
		// that must have been written.
		run func(t *testing.T, p *probe, frames [][]byte) []byte
	}{
		{"idle", func(t *testing.T, p *probe, frames [][]byte) []byte {
			for _, f := range frames {
				if _, err := p.s.Send(f); err != nil {
					t.Fatal(err)
				}
			}
			p.s.Close()
			if !p.s.Idle() {
				t.Fatal("an idle sender is not Idle after Close")
			}
			return concat(frames)
		}},
		{"parked with frames queued", func(t *testing.T, p *probe, frames [][]byte) []byte {
			p.w.set(func(w *fakeWriter) { w.full = true })
			for _, f := range frames[:8] {
				if _, err := p.s.Send(f); err != nil {
					t.Fatal(err)
				}
			}
			if p.s.state.Load() != parked {
				t.Fatalf("state %d, want parked", p.s.state.Load())
			}
			calls := len(p.w.calls())
			p.s.Close()
			p.w.set(func(w *fakeWriter) { w.full = false })
			// The socket drains, and the poller wakes the sender: its
			// parked batch is gone.
			if err := p.s.Flush(); err != nil {
				t.Fatalf("Flush after Close: %v", err)
			}
			if n := len(p.w.calls()); n != calls {
				t.Fatalf("Close and Flush of a parked sender made %d write calls", n-calls)
			}
			return nil
		}},
		{"while flushing", func(t *testing.T, p *probe, frames [][]byte) []byte {
			wait, open := p.w.hold()
			first := make(chan error, 1)
			go func() {
				_, err := p.s.Send(frames[0])
				first <- err
			}()
			wait()
			for _, f := range frames[1:8] {
				if _, err := p.s.Send(f); err != nil {
					t.Errorf("Send: %v", err)
				}
			}
			p.s.Close()
			if got := p.rel.released(); got != 7 {
				t.Errorf("Close during a flush released %d frames, want the 7 queued", got)
			}
			open()
			if err := <-first; err != nil {
				t.Fatalf("the flushing Send returned %v, want nil: its write succeeded", err)
			}
			if !p.s.Idle() {
				t.Fatal("not Idle after the flush in progress at Close ended")
			}
			return frames[0]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(&fakeWriter{}, nil)
			frames := sizedFrames(9)
			wrote := tt.run(t, p, frames[:8])
			if t.Failed() {
				return
			}
			if queued, err := p.s.Send(frames[8]); !errors.Is(err, ErrClosed) || queued != 0 {
				t.Fatalf("Send after Close = %d, %v; want 0, ErrClosed", queued, err)
			}
			p.rel.checkOnce(t, frames)
			if got := p.w.written(); string(got) != string(wrote) {
				t.Fatalf("wrote %q, want %q", got, wrote)
			}
			if p.s.Pending() != 0 {
				t.Fatalf("Pending() = %d after Close, want 0", p.s.Pending())
			}
		})
	}
}

func TestSenderWriteError(t *testing.T) {
	errBoom := errors.New("boom")
	frames := sizedFrames(10)
	tests := []struct {
		name     string
		held     bool // the first write is held while the rest queue
		failAt   int
		failTake int
		wrote    []byte // what must have been written
	}{
		{"first write fails", false, 1, 0, nil},
		{"first write fails after part of a frame", false, 1, 5, frames[0][:5]},
		{"second write fails", true, 2, 0, frames[0]},
		{"second write fails inside a frame", true, 2, len(frames[1]) + 5, concat([][]byte{frames[0], frames[1], frames[2][:5]})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(&fakeWriter{failAt: tt.failAt, failTake: tt.failTake, err: errBoom}, nil)
			var err error
			if tt.held {
				err = sendHeld(t, p, frames)
			} else {
				_, err = p.s.Send(frames[0])
			}
			if !errors.Is(err, errBoom) {
				t.Fatalf("the flushing Send returned %v, want the write error", err)
			}
			if !p.s.Idle() || p.s.Pending() != 0 {
				t.Fatalf("after a write error: Idle %v, Pending %d; want true, 0", p.s.Idle(), p.s.Pending())
			}
			late := testFrame(1, 0, 3)
			if queued, err := p.s.Send(late); !errors.Is(err, errBoom) || queued != 0 {
				t.Fatalf("Send after a write error = %d, %v; want 0 and the write error", queued, err)
			}
			calls := len(p.w.calls())
			if err := p.s.Flush(); err != nil || len(p.w.calls()) != calls {
				t.Fatalf("Flush after a write error = %v and made %d write calls", err, len(p.w.calls())-calls)
			}
			sent := frames[:1]
			if tt.held {
				sent = frames
			}
			p.rel.checkOnce(t, append(append([][]byte(nil), sent...), late))
			if got := p.w.written(); string(got) != string(tt.wrote) {
				t.Fatalf("wrote %q, want %q", got, tt.wrote)
			}
		})
	}
}

// TestSenderConcurrentSends has many goroutines send at once, with the
// writer taking whole batches, part of them, or part and then reporting a
// full socket (a poller goroutine then calls Flush): every frame leaves
// exactly once, in each producer's order, whole.
func TestSenderConcurrentSends(t *testing.T) {
	tests := []struct {
		name       string
		producers  int
		each       int
		limit      int
		blockShort bool
	}{
		{"whole writes", 16, 300, 0, false},
		{"short writes", 16, 300, 1000, false},
		{"short writes park", 16, 300, 1000, true},
		{"64 producers, tiny writes park", 64, 40, 50, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &fakeWriter{limit: tt.limit, blockShort: tt.blockShort}
			rel := newReleaseLog()
			wake := make(chan struct{}, 1)
			drained := make(chan struct{}, 1)
			signal := func(c chan struct{}) func() {
				return func() {
					select {
					case c <- struct{}{}:
					default:
					}
				}
			}
			s := NewSender(w.write, Options{Release: rel.release, Blocked: signal(wake), Drained: signal(drained)})

			stop := make(chan struct{})
			var poller sync.WaitGroup
			poller.Go(func() {
				for {
					select {
					case <-wake:
						if err := s.Flush(); err != nil {
							t.Errorf("Flush: %v", err)
						}
					case <-stop:
						return
					}
				}
			})
			defer poller.Wait()
			defer close(stop)

			frames := make([][][]byte, tt.producers)
			var all [][]byte
			for p := range frames {
				for i := range tt.each {
					frames[p] = append(frames[p], testFrame(p, i, (p*13+i*7)%200))
				}
				all = append(all, frames[p]...)
			}
			var wg sync.WaitGroup
			for p := range frames {
				wg.Go(func() {
					for _, f := range frames[p] {
						if _, err := s.Send(f); err != nil {
							t.Errorf("producer %d: Send: %v", p, err)
							return
						}
					}
				})
			}
			wg.Wait()
			timeout := time.After(20 * time.Second)
			for !s.Idle() {
				select {
				case <-drained:
				case <-timeout:
					t.Fatalf("not idle 20 s after the last Send: %d bytes pending, state %d", s.Pending(), s.state.Load())
				}
			}

			w.check(t)
			ids, err := splitTestFrames(w.written())
			if err != nil {
				t.Fatal(err)
			}
			checkProducerOrder(t, ids, tt.producers, tt.each)
			rel.checkOnce(t, all)
			if _, n := s.Stats(); n != uint64(len(all)) {
				t.Fatalf("Stats() counts %d frames, want %d", n, len(all))
			}
		})
	}
}

// TestSenderCounters checks that Counters count write calls and frames,
// that writes carry many frames each when many goroutines send to a slow
// socket, and that Senders sharing Counters add up.
func TestSenderCounters(t *testing.T) {
	c := new(Counters)
	slow := &fakeWriter{delay: 200 * time.Microsecond}
	s := NewSender(slow.write, Options{Counters: c})
	const producers, each = 8, 200
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Send(testFrame(p, i, 20)); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	writes, frames := s.Stats()
	if frames != producers*each || writes != uint64(slow.nonEmptyCalls()) {
		t.Fatalf("Stats() = %d writes, %d frames; want %d, %d", writes, frames, slow.nonEmptyCalls(), producers*each)
	}
	if frames <= writes {
		t.Fatalf("%d frames left in %d writes: no batching with %d goroutines sending to a slow socket", frames, writes, producers)
	}
	t.Logf("%d frames in %d writes: %.1f frames per write", frames, writes, float64(frames)/float64(writes))

	other := NewSender((&fakeWriter{}).write, Options{Counters: c})
	for i := range 10 {
		if _, err := other.Send(testFrame(0, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, sender := range []*Sender{s, other} {
		if w, f := sender.Stats(); w != writes+10 || f != frames+10 {
			t.Fatalf("shared Counters: Stats() = %d writes, %d frames; want %d, %d", w, f, writes+10, frames+10)
		}
	}
	if w, f := NewSender((&fakeWriter{}).write, Options{}).Stats(); w != 0 || f != 0 {
		t.Fatalf("a new Sender without Counters has Stats() = %d, %d", w, f)
	}
}

// TestSenderEmptyFrame: an empty frame takes no bytes, and a write of
// nothing but empty frames returns 0; the sender must drop it all the same
// instead of trying to write it forever.
func TestSenderEmptyFrame(t *testing.T) {
	var got []byte
	calls := 0
	s := NewSender(func(bufs [][]byte) (int, bool, error) {
		calls++
		if calls > 100 {
			t.Fatal("the sender keeps writing")
		}
		n := 0
		for _, b := range bufs {
			got = append(got, b...)
			n += len(b)
		}
		return n, false, nil
	}, Options{})
	for _, f := range []string{"", "abc", "", "", "de"} {
		if _, err := s.Send([]byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != "abcde" || !s.Idle() {
		t.Fatalf("wrote %q, idle %v; want \"abcde\", idle", got, s.Idle())
	}
}
