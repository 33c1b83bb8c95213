package writev

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// probe is a Writer over a fakeWriter, with its releases logged.
type probe struct {
	w   *Writer
	fw  *fakeWriter
	rel *releaseLog
}

func newProbe(fw *fakeWriter, c *Counters) *probe {
	p := &probe{fw: fw, rel: newReleaseLog()}
	p.w = NewWriter(fw.write, Options{Release: p.rel.release, Counters: c})
	return p
}

// push pushes frames with no deadline and checks that each Push returns
// the bytes queued and makes no write: only Flush writes.
func (p *probe) push(t *testing.T, frames [][]byte) {
	t.Helper()
	calls := len(p.fw.calls())
	queued := p.w.Queued()
	for k, f := range frames {
		queued += len(f)
		if got, err := p.w.Push(f, time.Time{}); err != nil || got != queued {
			t.Fatalf("Push of frame %d = %d, %v; want %d, nil", k, got, err, queued)
		}
	}
	if n := len(p.fw.calls()) - calls; n != 0 {
		t.Fatalf("Push made %d write calls, want none", n)
	}
}

// flushed is what one Flush returned, and the bytes the writer took in it.
type flushed struct {
	n, taken   int
	wouldBlock bool
}

// flushUntilIdle plays the owner: it calls Flush, as on each EPOLLOUT,
// until the Writer is idle, at most limit times, and returns what each
// Flush returned.
func flushUntilIdle(t *testing.T, p *probe, limit int) []flushed {
	t.Helper()
	var got []flushed
	for !p.w.Idle() {
		if len(got) == limit {
			t.Fatalf("not idle after %d Flush calls", limit)
		}
		before := len(p.fw.written())
		n, wouldBlock, err := p.w.Flush()
		if err != nil {
			t.Fatalf("Flush: %v", err)
		}
		got = append(got, flushed{n, len(p.fw.written()) - before, wouldBlock})
	}
	return got
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

// pushDuring makes the first write call push frames, so that they are
// queued while a write is in progress.
func (p *probe) pushDuring(t *testing.T, frames [][]byte) {
	p.fw.set(func(fw *fakeWriter) {
		fw.during = func(call int) {
			if call == 1 {
				p.push(t, frames)
			}
		}
	})
}

// checkIdle fails the test unless the Writer holds nothing.
func checkIdle(t *testing.T, w *Writer) {
	t.Helper()
	if !w.Idle() || w.Pending() != 0 || w.Queued() != 0 || !w.Deadline().IsZero() {
		t.Fatalf("Idle() = %v, Pending() = %d, Queued() = %d, Deadline() = %v; want true, 0, 0, zero",
			w.Idle(), w.Pending(), w.Queued(), w.Deadline())
	}
}

func TestWriterWritesInOrder(t *testing.T) {
	tests := []struct {
		name   string
		frames int
		// how: "each" flushes after each Push; "all" pushes every frame,
		// then flushes; "during" pushes the first frame, flushes, and
		// pushes the rest while the first is being written.
		how   string
		calls []int // buffers per write call
	}{
		{"one frame", 1, "all", []int{1}},
		{"one at a time", 5, "each", []int{1, 1, 1, 1, 1}},
		{"in one batch", 100, "all", []int{100}},
		{"pushed during a write", 100, "during", []int{1, 99}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(&fakeWriter{}, nil)
			frames := sizedFrames(tt.frames)
			stream := concat(frames)
			p.rel.requireWrittenBeforeRelease(p.fw, frames)
			var results []flushed
			switch tt.how {
			case "each":
				for _, f := range frames {
					p.push(t, [][]byte{f})
					results = append(results, flushUntilIdle(t, p, 1)...)
				}
			case "all":
				p.push(t, frames)
				results = flushUntilIdle(t, p, 1)
			case "during":
				p.pushDuring(t, frames[1:])
				p.push(t, frames[:1])
				results = flushUntilIdle(t, p, 1)
			}
			p.fw.check(t)
			if got := p.fw.written(); string(got) != string(stream) {
				t.Fatalf("wrote %d bytes that differ from the %d bytes of the frames", len(got), len(stream))
			}
			if got := p.fw.calls(); !slices.Equal(got, tt.calls) {
				t.Fatalf("write calls got %v buffers, want %v", got, tt.calls)
			}
			n := 0
			for _, r := range results {
				if r.wouldBlock || r.n != r.taken {
					t.Fatalf("Flush returned %d bytes, wouldBlock %v; the writer took %d and never blocks", r.n, r.wouldBlock, r.taken)
				}
				n += r.n
			}
			if n != len(stream) {
				t.Fatalf("the Flushes returned %d bytes in all, want %d", n, len(stream))
			}
			p.rel.checkOnce(t, frames)
			p.rel.checkOrder(t, frames)
			checkIdle(t, p.w)
			writes, nframes := p.w.Stats()
			if writes != uint64(len(tt.calls)) || nframes != uint64(tt.frames) {
				t.Fatalf("Stats() = %d writes, %d frames; want %d, %d", writes, nframes, len(tt.calls), tt.frames)
			}
		})
	}
}

// TestWriterBatchesAtMostIOVMax: one Flush writes everything queued, in
// write calls of at most IOVMax buffers, each as full as allowed.
func TestWriterBatchesAtMostIOVMax(t *testing.T) {
	tests := []struct {
		name   string
		frames int
		during bool // all but the first are pushed during the first write
		calls  []int
	}{
		{"IOVMax frames", IOVMax, false, []int{IOVMax}},
		{"one more than IOVMax", IOVMax + 1, false, []int{IOVMax, 1}},
		{"3000 frames", 3000, false, []int{IOVMax, IOVMax, 3000 - 2*IOVMax}},
		{"3000 frames pushed during a write", 3000, true, []int{1, IOVMax, IOVMax, 2999 - 2*IOVMax}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(&fakeWriter{}, nil)
			frames := make([][]byte, tt.frames)
			for i := range frames {
				frames[i] = testFrame(0, i, i%5)
			}
			p.rel.requireWrittenBeforeRelease(p.fw, frames)
			if tt.during {
				p.pushDuring(t, frames[1:])
				p.push(t, frames[:1])
			} else {
				p.push(t, frames)
			}
			n, wouldBlock, err := p.w.Flush()
			if n != len(concat(frames)) || wouldBlock || err != nil {
				t.Fatalf("Flush = %d, %v, %v; want %d, false, nil", n, wouldBlock, err, len(concat(frames)))
			}
			p.fw.check(t)
			if got := p.fw.calls(); !slices.Equal(got, tt.calls) {
				t.Fatalf("write calls got %v buffers, want %v", got, tt.calls)
			}
			ids, err := splitTestFrames(p.fw.written())
			if err != nil {
				t.Fatal(err)
			}
			checkProducerOrder(t, ids, 1, len(frames))
			p.rel.checkOnce(t, frames)
			p.rel.checkOrder(t, frames)
			checkIdle(t, p.w)
			if writes, n := p.w.Stats(); writes != uint64(len(tt.calls)) || n != uint64(tt.frames) {
				t.Fatalf("Stats() = %d writes, %d frames; want %d, %d", writes, n, len(tt.calls), tt.frames)
			}
		})
	}
}

// TestWriterShortWrites has the writer take a few bytes per call, cutting
// frames anywhere: the Writer must go on from where each call stopped,
// within the same Flush or, when the writer reports a full socket, on the
// next.
func TestWriterShortWrites(t *testing.T) {
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
			p.rel.requireWrittenBeforeRelease(p.fw, frames)
			p.push(t, frames)
			results := flushUntilIdle(t, p, len(stream)+1)
			if !tt.blockShort && len(results) != 1 {
				t.Fatalf("the Writer needed %d Flush calls with a writer that never blocks", len(results))
			}
			if tt.blockShort && tt.limit > 0 {
				// Every write but the last is short and ends its Flush.
				if want := (len(stream) + tt.limit - 1) / tt.limit; len(results) != want {
					t.Fatalf("%d Flush calls for %d bytes written %d at a time, want %d", len(results), len(stream), tt.limit, want)
				}
			}
			n := 0
			for k, r := range results {
				if r.n != r.taken {
					t.Fatalf("Flush %d returned %d bytes, the writer took %d", k, r.n, r.taken)
				}
				if last := k == len(results)-1; r.wouldBlock == last {
					t.Fatalf("Flush %d of %d returned wouldBlock %v", k+1, len(results), r.wouldBlock)
				}
				n += r.n
			}
			if n != len(stream) {
				t.Fatalf("the Flushes returned %d bytes in all, want %d", n, len(stream))
			}
			p.fw.check(t)
			if got := p.fw.written(); string(got) != string(stream) {
				ids, err := splitTestFrames(got)
				t.Fatalf("wrote %d bytes that differ from the %d bytes of the frames; frames %v, %v", len(got), len(stream), ids, err)
			}
			p.rel.checkOnce(t, frames)
			p.rel.checkOrder(t, frames)
			checkIdle(t, p.w)
			writes, nframes := p.w.Stats()
			if nframes != uint64(len(frames)) || writes != uint64(p.fw.nonEmptyCalls()) {
				t.Fatalf("Stats() = %d writes, %d frames; want %d, %d", writes, nframes, p.fw.nonEmptyCalls(), len(frames))
			}
		})
	}
}

// TestWriterWouldBlock checks a full socket: Flush stops and says so, the
// frames pushed meanwhile only queue, and the Flush after the socket has
// room writes the batch and them from where it stopped.
func TestWriterWouldBlock(t *testing.T) {
	p := newProbe(&fakeWriter{full: true}, nil)
	frames := sizedFrames(10)
	stream := concat(frames)
	first := len(concat(frames[:4]))

	if n, wouldBlock, err := p.w.Flush(); n != 0 || wouldBlock || err != nil || len(p.fw.calls()) != 0 {
		t.Fatalf("Flush of a new Writer = %d, %v, %v with %d write calls; want 0, false, nil, none", n, wouldBlock, err, len(p.fw.calls()))
	}
	p.push(t, frames[:4])
	if n, wouldBlock, err := p.w.Flush(); n != 0 || !wouldBlock || err != nil {
		t.Fatalf("Flush on a full socket = %d, %v, %v; want 0, true, nil", n, wouldBlock, err)
	}
	if p.w.Idle() || p.w.Pending() != first || p.w.Queued() != 0 {
		t.Fatalf("after a Flush that would block: Idle %v, Pending %d, Queued %d; want false, %d, 0", p.w.Idle(), p.w.Pending(), p.w.Queued(), first)
	}
	p.push(t, frames[4:])
	if p.w.Pending() != len(stream) || p.w.Queued() != len(stream)-first {
		t.Fatalf("after more Pushes: Pending %d, Queued %d; want %d, %d", p.w.Pending(), p.w.Queued(), len(stream), len(stream)-first)
	}
	// A wake-up while the socket is still full costs one write call.
	if n, wouldBlock, err := p.w.Flush(); n != 0 || !wouldBlock || err != nil {
		t.Fatalf("a second Flush on a full socket = %d, %v, %v; want 0, true, nil", n, wouldBlock, err)
	}
	if p.rel.released() != 0 {
		t.Fatalf("%d frames released before any byte was written", p.rel.released())
	}

	p.fw.set(func(w *fakeWriter) { w.full = false })
	if n, wouldBlock, err := p.w.Flush(); n != len(stream) || wouldBlock || err != nil {
		t.Fatalf("Flush once the socket has room = %d, %v, %v; want %d, false, nil", n, wouldBlock, err, len(stream))
	}
	if got, want := p.fw.calls(), []int{4, 10, 10}; !slices.Equal(got, want) {
		t.Fatalf("write calls got %v buffers, want %v: the batch, then the batch with the frames queued since", got, want)
	}
	if got := p.fw.written(); string(got) != string(stream) {
		t.Fatalf("wrote %q, want the frames in order", got)
	}
	p.rel.checkOnce(t, frames)
	p.rel.checkOrder(t, frames)
	checkIdle(t, p.w)

	// Flush with nothing to write writes nothing.
	calls := len(p.fw.calls())
	if n, wouldBlock, err := p.w.Flush(); n != 0 || wouldBlock || err != nil || len(p.fw.calls()) != calls {
		t.Fatalf("Flush on an idle Writer = %d, %v, %v and made %d write calls", n, wouldBlock, err, len(p.fw.calls())-calls)
	}
}

// TestWriterDeadline checks Deadline, which the client bounds each write
// by: during a write it is the latest deadline of the frames in the batch
// being written, zero if one of them has none; frames pushed during the
// write are not in that batch; a batch cut short keeps its deadline, raised
// by the frames taken into it later; once the batch is written it is zero,
// and the next batch is bounded by its own frames only.
func TestWriterDeadline(t *testing.T) {
	base := time.Now().Add(time.Hour)
	// at returns the deadline s seconds after base; 0 is no deadline.
	at := func(s int) time.Time {
		if s == 0 {
			return time.Time{}
		}
		return base.Add(time.Duration(s) * time.Second)
	}
	const size = 100 // bytes per frame
	tests := []struct {
		name string
		// limit, if above 0, is the bytes a write call takes before it
		// reports a full socket.
		limit int
		// rounds are the deadlines of the frames pushed before each
		// Flush; during, those of the frames pushed during write call k.
		rounds [][]int
		during map[int][]int
		// want is Deadline() during each write call.
		want []int
	}{
		{"one frame", 0, [][]int{{2}}, nil, []int{2}},
		{"latest of the batch", 0, [][]int{{2, 3, 1}}, nil, []int{3}},
		{"one frame has none", 0, [][]int{{2, 0, 1}}, nil, []int{0}},
		{"the next Flush's batch has its own", 0, [][]int{{3}, {1, 2}}, nil, []int{3, 2}},
		{"after a batch with none", 0, [][]int{{0}, {1}}, nil, []int{0, 1}},
		{"after a batch with one", 0, [][]int{{1}, {0}}, nil, []int{1, 0}},
		{"frames pushed during a write are the next batch", 0, [][]int{{3}}, map[int][]int{1: {1, 2}}, []int{3, 2}},
		{"frames pushed during a write, none before", 0, [][]int{{0}}, map[int][]int{1: {1}}, []int{0, 1}},
		{"a cut batch keeps its deadline", 150, [][]int{{1, 3}, {2}}, nil, []int{3, 3}},
		{"frames taken into a cut batch raise it", 150, [][]int{{1, 2}, {3}}, nil, []int{2, 3}},
		{"a frame without one taken into a cut batch", 150, [][]int{{1, 2}, {0}}, nil, []int{2, 0}},
		{"a cut batch without one stays so", 150, [][]int{{0, 2}, {3}}, nil, []int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(&fakeWriter{limit: tt.limit, blockShort: true}, nil)
			var got []time.Time
			frames := 0
			push := func(deadlines []int) {
				for _, s := range deadlines {
					if _, err := p.w.Push(testFrame(0, frames, size-testFrameHeader), at(s)); err != nil {
						t.Fatalf("Push: %v", err)
					}
					frames++
				}
			}
			p.fw.during = func(call int) {
				got = append(got, p.w.Deadline())
				push(tt.during[call])
			}
			if d := p.w.Deadline(); !d.IsZero() {
				t.Fatalf("a new Writer's Deadline() = %v, want zero", d)
			}
			for _, round := range tt.rounds {
				idle := p.w.Idle()
				push(round)
				if d := p.w.Deadline(); idle && !d.IsZero() {
					t.Fatalf("Deadline() = %v with frames pushed but none taken, want zero", d)
				}
				if _, _, err := p.w.Flush(); err != nil {
					t.Fatalf("Flush: %v", err)
				}
				d := p.w.Deadline()
				if p.w.Idle() && !d.IsZero() {
					t.Fatalf("Deadline() = %v after a Flush that wrote everything, want zero", d)
				}
				if !p.w.Idle() && !d.Equal(got[len(got)-1]) {
					t.Fatalf("Deadline() = %v after a Flush that would block, want %v, as during its write", d, got[len(got)-1])
				}
			}
			want := make([]time.Time, len(tt.want))
			for k, s := range tt.want {
				want[k] = at(s)
			}
			if !slices.EqualFunc(got, want, time.Time.Equal) {
				t.Fatalf("Deadline() during each write = %v, want %v", seconds(got, base), tt.want)
			}
		})
	}
}

// seconds names deadlines in seconds after base, 0 for none, for messages.
func seconds(ds []time.Time, base time.Time) []int {
	out := make([]int, len(ds))
	for k, d := range ds {
		if !d.IsZero() {
			out[k] = int(d.Sub(base) / time.Second)
		}
	}
	return out
}

// TestWriterClose checks what Close returns and releases in each state
// the owner may close in: the frames not yet written, in order, with
// started set only when the first of them was partly written; everything
// released exactly once, and nothing written after.
func TestWriterClose(t *testing.T) {
	frames := sizedFrames(9)
	tests := []struct {
		name string
		// run pushes frames[:8], flushes as it likes, and returns the
		// first frame that must be left unwritten (8: none) and the bytes
		// of it that must have been written.
		run func(t *testing.T, p *probe) (first, cut int)
	}{
		{"never flushed", func(t *testing.T, p *probe) (int, int) {
			p.push(t, frames[:8])
			return 0, 0
		}},
		{"idle after a Flush", func(t *testing.T, p *probe) (int, int) {
			p.push(t, frames[:8])
			flushUntilIdle(t, p, 1)
			return 8, 0
		}},
		{"full socket, nothing written", func(t *testing.T, p *probe) (int, int) {
			p.fw.set(func(w *fakeWriter) { w.full = true })
			p.push(t, frames[:4])
			mustBlock(t, p)
			p.push(t, frames[4:8])
			return 0, 0
		}},
		{"first frame cut", func(t *testing.T, p *probe) (int, int) {
			cut := len(frames[0]) / 2
			p.fw.set(func(w *fakeWriter) { w.limit, w.blockShort = cut, true })
			p.push(t, frames[:4])
			mustBlock(t, p)
			p.push(t, frames[4:8])
			return 0, cut
		}},
		{"stopped between frames", func(t *testing.T, p *probe) (int, int) {
			p.fw.set(func(w *fakeWriter) { w.limit, w.blockShort = len(frames[0])+len(frames[1]), true })
			p.push(t, frames[:8])
			mustBlock(t, p)
			return 2, 0
		}},
		{"a later frame cut", func(t *testing.T, p *probe) (int, int) {
			p.fw.set(func(w *fakeWriter) { w.limit, w.blockShort = len(frames[0])+5, true })
			p.push(t, frames[:4])
			mustBlock(t, p)
			p.push(t, frames[4:8])
			return 1, 5
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(&fakeWriter{}, nil)
			first, cut := tt.run(t, p)
			wrote := append(concat(frames[:first]), frames[min(first, 7)][:cut]...)
			released := p.rel.released()
			calls := len(p.fw.calls())

			left, started := p.w.Close()
			if !slices.EqualFunc(left, frames[first:8], func(a, b []byte) bool { return frameKey(a) == frameKey(b) }) {
				t.Fatalf("Close returned %d frames, want frames %d to 7 in order", len(left), first)
			}
			if started != (cut > 0) {
				t.Fatalf("Close returned started = %v; %d bytes of the first frame left were written", started, cut)
			}
			if got := p.rel.released() - released; got != len(left) {
				t.Fatalf("Close released %d frames before returning, want the %d it returned", got, len(left))
			}
			p.rel.checkOnce(t, frames[:8])
			p.rel.checkOrder(t, frames[:8])
			checkIdle(t, p.w)

			if queued, err := p.w.Push(frames[8], time.Time{}); !errors.Is(err, ErrClosed) || queued != 0 {
				t.Fatalf("Push after Close = %d, %v; want 0, ErrClosed", queued, err)
			}
			p.rel.checkOnce(t, frames) // the frame Push refused is released too
			p.fw.set(func(w *fakeWriter) { w.full, w.limit = false, 0 })
			if n, wouldBlock, err := p.w.Flush(); n != 0 || wouldBlock || err != nil {
				t.Fatalf("Flush after Close = %d, %v, %v; want 0, false, nil", n, wouldBlock, err)
			}
			if got := len(p.fw.calls()); got != calls {
				t.Fatalf("Close, Push and Flush after it made %d write calls, want none", got-calls)
			}
			if got := p.fw.written(); string(got) != string(wrote) {
				t.Fatalf("wrote %d bytes, want %d", len(got), len(wrote))
			}
			if left, started := p.w.Close(); len(left) != 0 || started {
				t.Fatalf("a second Close = %d frames, %v; want none, false", len(left), started)
			}
			p.rel.checkOnce(t, frames)
		})
	}
}

// mustBlock flushes p's Writer, which must stop at a full socket.
func mustBlock(t *testing.T, p *probe) {
	t.Helper()
	if _, wouldBlock, err := p.w.Flush(); !wouldBlock || err != nil {
		t.Fatalf("Flush = %v, %v; want a full socket", wouldBlock, err)
	}
}

// TestWriterCloseWhileProducersPush closes a Writer while producers push:
// each frame is written, returned by Close, or refused by Push, exactly
// one of them, in each producer's order, and released exactly once. The
// producers push the first half of their frames while the owner flushes,
// and the second half as it closes.
func TestWriterCloseWhileProducersPush(t *testing.T) {
	const producers, each = 8, 500
	fw := &fakeWriter{limit: 1000, blockShort: true}
	rel := newReleaseLog()
	w := NewWriter(fw.write, Options{Release: rel.release})
	frames := make([][][]byte, producers)
	var all [][]byte
	for p := range frames {
		for i := range each {
			frames[p] = append(frames[p], testFrame(p, i, (p*13+i*7)%200))
		}
		all = append(all, frames[p]...)
	}

	start, closing := make(chan struct{}), make(chan struct{})
	var firstHalves sync.WaitGroup
	firstHalves.Add(producers)
	var mu sync.Mutex
	var refused [][]byte
	var wg sync.WaitGroup
	for p := range frames {
		wg.Go(func() {
			<-start
			for i, f := range frames[p] {
				if i == each/2 {
					firstHalves.Done()
					<-closing
				}
				if _, err := w.Push(f, time.Time{}); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Push = %v, want nil or ErrClosed", err)
					}
					mu.Lock()
					refused = append(refused, f)
					mu.Unlock()
				}
			}
		})
	}
	halvesPushed := make(chan struct{})
	go func() {
		firstHalves.Wait()
		close(halvesPushed)
	}()

	// The owner flushes until the first halves are pushed and some frames
	// are written, then closes while the second halves are pushed.
	close(start)
	for flushing := true; flushing; {
		select {
		case <-halvesPushed:
			flushing = rel.released() == 0
		default:
		}
		if _, _, err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	writtenFrames := rel.releasedFrames()
	// Close once some of the second halves are queued, while the rest are
	// being pushed.
	queued := w.Queued()
	close(closing)
	for limit := time.Now().Add(10 * time.Second); w.Queued() == queued; runtime.Gosched() {
		if time.Now().After(limit) {
			t.Fatal("no frame pushed in 10 s")
		}
	}
	left, started := w.Close()
	wg.Wait()

	// The stream is the frames written whole, then, if started, part of
	// the first frame left.
	stream := fw.written()
	whole := len(concat(writtenFrames))
	if started != (whole < len(stream)) || (started && string(stream[whole:]) != string(left[0][:len(stream)-whole])) {
		t.Fatalf("started = %v, with %d bytes written after the %d of the frames written whole", started, len(stream)-whole, whole)
	}
	ids, err := splitTestFrames(stream[:whole])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(left, refused...) {
		p, i, err := parseTestFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, frameID{p, i})
	}
	checkProducerOrder(t, ids, producers, each)
	rel.checkOnce(t, all)
	t.Logf("%d frames written, %d left at Close (started %v), %d refused", len(writtenFrames), len(left), started, len(refused))
}

func TestWriterWriteError(t *testing.T) {
	errBoom := errors.New("boom")
	frames := sizedFrames(10)
	tests := []struct {
		name string
		// during: all but the first frame are pushed during the first
		// write, so that a second write carries them.
		during   bool
		failAt   int
		failTake int
		// whole is the frames written whole; cut, the bytes written of
		// the next.
		whole, cut int
	}{
		{"first write fails", false, 1, 0, 0, 0},
		{"first write fails after part of a frame", false, 1, 5, 0, 5},
		{"second write fails", true, 2, 0, 1, 0},
		{"second write fails inside a frame", true, 2, len(frames[1]) + 5, 2, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(&fakeWriter{failAt: tt.failAt, failTake: tt.failTake, err: errBoom}, nil)
			p.rel.requireWrittenBeforeRelease(p.fw, frames)
			if tt.during {
				p.pushDuring(t, frames[1:])
				p.push(t, frames[:1])
			} else {
				p.push(t, frames)
			}
			wrote := append(concat(frames[:tt.whole]), frames[tt.whole][:tt.cut]...)
			n, wouldBlock, err := p.w.Flush()
			if n != len(wrote) || wouldBlock || !errors.Is(err, errBoom) {
				t.Fatalf("Flush = %d, %v, %v; want %d, false, the write error", n, wouldBlock, err, len(wrote))
			}
			if got := p.fw.written(); string(got) != string(wrote) {
				t.Fatalf("wrote %q, want %q", got, wrote)
			}
			p.rel.checkOnce(t, frames[:tt.whole])
			if want := len(concat(frames)) - len(wrote); p.w.Pending() != want || p.w.Idle() {
				t.Fatalf("after a write error: Pending %d, Idle %v; want %d, false", p.w.Pending(), p.w.Idle(), want)
			}
			if writes, nframes := p.w.Stats(); writes != uint64(p.fw.nonEmptyCalls()) || nframes != uint64(tt.whole) {
				t.Fatalf("Stats() = %d writes, %d frames; want %d, %d", writes, nframes, p.fw.nonEmptyCalls(), tt.whole)
			}

			// The owner gives up on the connection.
			p.rel.allowUnwritten()
			left, started := p.w.Close()
			if len(left) != len(frames)-tt.whole || started != (tt.cut > 0) {
				t.Fatalf("Close = %d frames, started %v; want %d, %v", len(left), started, len(frames)-tt.whole, tt.cut > 0)
			}
			p.rel.checkOnce(t, frames)
			p.rel.checkOrder(t, frames)
		})
	}
}

// owner plays the goroutine that owns a Writer, as the server's loop or
// the client's writer goroutine does: it flushes whenever a producer kicks
// it and, after a Flush that would block, flushes again at once, as if the
// socket had become writable. On stop it flushes until the Writer is idle.
type owner struct {
	w    *Writer
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	err  error // set before done is closed
}

func startOwner(w *Writer) *owner {
	o := &owner{w: w, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go o.run()
	return o
}

func (o *owner) run() {
	defer close(o.done)
	for {
		stopping := false
		select {
		case <-o.kick:
		case <-o.stop:
			stopping = true
		}
		for {
			_, wouldBlock, err := o.w.Flush()
			if err != nil {
				o.err = err
				return
			}
			if !wouldBlock && (!stopping || o.w.Idle()) {
				break
			}
		}
		if stopping {
			return
		}
	}
}

// push queues frame and wakes the owner. Any goroutine may call it.
func (o *owner) push(frame []byte) error {
	if _, err := o.w.Push(frame, time.Time{}); err != nil {
		return err
	}
	select {
	case o.kick <- struct{}{}:
	default: // the owner is awake already
	}
	return nil
}

// finish stops the owner once it has written everything, and returns the
// write error that stopped it, if one did.
func (o *owner) finish() error {
	close(o.stop)
	<-o.done
	return o.err
}

// TestWriterConcurrentPushes has many goroutines push at once to a Writer
// whose owner flushes, with the writer taking whole batches, part of them,
// or part and then reporting a full socket: every frame leaves exactly
// once, in each producer's order, whole.
func TestWriterConcurrentPushes(t *testing.T) {
	tests := []struct {
		name       string
		producers  int
		each       int
		limit      int
		blockShort bool
	}{
		{"whole writes", 16, 300, 0, false},
		{"short writes", 16, 300, 1000, false},
		{"short writes block", 16, 300, 1000, true},
		{"64 producers, tiny writes block", 64, 40, 50, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw := &fakeWriter{limit: tt.limit, blockShort: tt.blockShort}
			rel := newReleaseLog()
			w := NewWriter(fw.write, Options{Release: rel.release})
			o := startOwner(w)

			frames := make([][][]byte, tt.producers)
			var all [][]byte
			for p := range frames {
				for i := range tt.each {
					frames[p] = append(frames[p], testFrame(p, i, (p*13+i*7)%200))
				}
				all = append(all, frames[p]...)
			}
			totalBytes := len(concat(all))
			var wg sync.WaitGroup
			for p := range frames {
				wg.Go(func() {
					for _, f := range frames[p] {
						if err := o.push(f); err != nil {
							t.Errorf("producer %d: Push: %v", p, err)
							return
						}
						if q := w.Queued(); q < 0 || q > totalBytes {
							t.Errorf("Queued() = %d with %d bytes pushed in all", q, totalBytes)
						}
					}
				})
			}
			wg.Wait()
			if err := o.finish(); err != nil {
				t.Fatalf("Flush: %v", err)
			}

			fw.check(t)
			ids, err := splitTestFrames(fw.written())
			if err != nil {
				t.Fatal(err)
			}
			checkProducerOrder(t, ids, tt.producers, tt.each)
			rel.checkOnce(t, all)
			checkIdle(t, w)
			if _, n := w.Stats(); n != uint64(len(all)) {
				t.Fatalf("Stats() counts %d frames, want %d", n, len(all))
			}
		})
	}
}

// TestWriterCounters checks that Counters count write calls and frames,
// that writes carry many frames each when many goroutines push to a slow
// socket, and that Writers sharing Counters add up.
func TestWriterCounters(t *testing.T) {
	c := new(Counters)
	slow := &fakeWriter{delay: 200 * time.Microsecond}
	w := NewWriter(slow.write, Options{Counters: c})
	o := startOwner(w)
	const producers, each = 8, 200
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if err := o.push(testFrame(p, i, 20)); err != nil {
					t.Errorf("Push: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := o.finish(); err != nil {
		t.Fatal(err)
	}
	writes, frames := w.Stats()
	if frames != producers*each || writes != uint64(slow.nonEmptyCalls()) {
		t.Fatalf("Stats() = %d writes, %d frames; want %d, %d", writes, frames, slow.nonEmptyCalls(), producers*each)
	}
	if frames <= writes {
		t.Fatalf("%d frames left in %d writes: no batching with %d goroutines pushing to a slow socket", frames, writes, producers)
	}
	t.Logf("%d frames in %d writes: %.1f frames per write", frames, writes, float64(frames)/float64(writes))

	other := NewWriter((&fakeWriter{}).write, Options{Counters: c})
	for i := range 10 {
		if _, err := other.Push(testFrame(0, i, 1), time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := other.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for _, each := range []*Writer{w, other} {
		if got, gotFrames := each.Stats(); got != writes+10 || gotFrames != frames+10 {
			t.Fatalf("shared Counters: Stats() = %d writes, %d frames; want %d, %d", got, gotFrames, writes+10, frames+10)
		}
	}
	if got, gotFrames := NewWriter((&fakeWriter{}).write, Options{}).Stats(); got != 0 || gotFrames != 0 {
		t.Fatalf("a new Writer without Counters has Stats() = %d, %d", got, gotFrames)
	}
}

// TestWriterEmptyFrames: an empty frame takes no bytes, and a write of
// nothing but empty frames returns 0; the Writer must count it written and
// release it all the same, instead of trying to write it forever.
func TestWriterEmptyFrames(t *testing.T) {
	tests := []struct {
		name   string
		frames []string
		limit  int // bytes per call, then full; 0: all
	}{
		{"among others", []string{"", "abc", "", "", "de"}, 0},
		{"only empty frames", []string{"", ""}, 0},
		{"after a short write", []string{"abc", "", "", "de", ""}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProbe(&fakeWriter{limit: tt.limit, blockShort: true}, nil)
			frames := make([][]byte, len(tt.frames))
			for k, s := range tt.frames {
				frames[k] = append(make([]byte, 0, 1), s...) // an array of its own
			}
			stream := concat(frames)
			p.push(t, frames)
			// Not flushUntilIdle: the Writer may look idle with only empty
			// frames queued, which still must be released.
			n := 0
			for k := 0; ; k++ {
				if k == 10 {
					t.Fatal("Flush still would block after 10 calls")
				}
				m, wouldBlock, err := p.w.Flush()
				if err != nil {
					t.Fatalf("Flush: %v", err)
				}
				n += m
				if !wouldBlock {
					break
				}
			}
			p.fw.check(t)
			if got := p.fw.written(); string(got) != string(stream) || n != len(stream) {
				t.Fatalf("wrote %q, Flush returned %d bytes; want %q, %d", got, n, stream, len(stream))
			}
			p.rel.checkOnce(t, frames)
			p.rel.checkOrder(t, frames)
			checkIdle(t, p.w)
			if _, nframes := p.w.Stats(); nframes != uint64(len(frames)) {
				t.Fatalf("Stats() counts %d frames, want %d", nframes, len(frames))
			}
		})
	}
}

// TestWriterIdleWithEmptyFrames: a Writer holding only empty frames is not
// idle: they are released when a Flush writes them, and not before.
func TestWriterIdleWithEmptyFrames(t *testing.T) {
	rel := newReleaseLog()
	w := NewWriter((&fakeWriter{}).write, Options{Release: rel.release})
	if _, err := w.Push(make([]byte, 0, 1), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if w.Idle() {
		t.Fatal("Idle() with a frame queued and not released")
	}
	if _, _, err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !w.Idle() {
		t.Fatal("not Idle() after the Flush")
	}
}
