package writev

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// tcpPair returns the two ends of a TCP connection on 127.0.0.1, closed
// when the test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := lis.Accept()
		accepted <- result{c, err}
	}()
	client, err = net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return client, r.c
}

// TestConnFramesArriveWholeInOrder pushes frames from many goroutines to a
// Writer over a TCP connection, which its owner goroutine flushes: the peer
// reads each whole, in each producer's order.
func TestConnFramesArriveWholeInOrder(t *testing.T) {
	tests := []struct {
		name      string
		producers int
		each      int
		maxSize   int
	}{
		{"one producer, frames up to 64 KiB", 1, 200, 64 << 10},
		{"8 producers, frames up to 4 KiB", 8, 200, 4 << 10},
		{"32 producers, small frames", 32, 100, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := tcpPair(t)
			rel := newReleaseLog()
			w := NewWriter(guard(Conn(client)), Options{Release: rel.release})
			o := startOwner(w)

			frames := make([][][]byte, tt.producers)
			var all [][]byte
			total := 0
			for p := range frames {
				for i := range tt.each {
					f := testFrame(p, i, (p*7919+i*104729)%tt.maxSize)
					frames[p] = append(frames[p], f)
					total += len(f)
				}
				all = append(all, frames[p]...)
			}

			type result struct {
				got []byte
				err error
			}
			read := make(chan result, 1)
			go func() {
				server.SetReadDeadline(time.Now().Add(30 * time.Second))
				got := make([]byte, total)
				_, err := io.ReadFull(server, got)
				read <- result{got, err}
			}()

			var wg sync.WaitGroup
			for p := range frames {
				wg.Go(func() {
					for _, f := range frames[p] {
						if err := o.push(f); err != nil {
							t.Errorf("producer %d: Push: %v", p, err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := o.finish(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			r := <-read
			if r.err != nil {
				t.Fatalf("reading %d bytes: %v", total, r.err)
			}
			ids, err := splitTestFrames(r.got)
			if err != nil {
				t.Fatal(err)
			}
			checkProducerOrder(t, ids, tt.producers, tt.each)
			checkIdle(t, w)
			rel.checkOnce(t, all)
		})
	}
}

// TestConnWriteError closes the connection under a Writer: Flush returns
// the write error, and Close returns and releases the frames not written.
func TestConnWriteError(t *testing.T) {
	client, _ := tcpPair(t)
	rel := newReleaseLog()
	w := NewWriter(guard(Conn(client)), Options{Release: rel.release})
	frames := sizedFrames(3)
	if _, err := w.Push(frames[0], time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, _, err := w.Flush(); n != len(frames[0]) || err != nil {
		t.Fatalf("Flush on an open connection = %d, %v; want %d, nil", n, err, len(frames[0]))
	}
	client.Close()
	for _, f := range frames[1:] {
		if _, err := w.Push(f, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if n, wouldBlock, err := w.Flush(); n != 0 || wouldBlock || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Flush on a closed connection = %d, %v, %v; want 0, false, net.ErrClosed", n, wouldBlock, err)
	}
	left, started := w.Close()
	if len(left) != 2 || started {
		t.Fatalf("Close = %d frames, started %v; want 2, false", len(left), started)
	}
	rel.checkOnce(t, frames)
	rel.checkOrder(t, frames)
}

// TestConnWriteBoundedByDeadline bounds each write by Deadline, as the
// client does, over a connection whose peer reads nothing: the write ends
// with os.ErrDeadlineExceeded, and not before the latest deadline of the
// frames it carries.
func TestConnWriteBoundedByDeadline(t *testing.T) {
	client, server := net.Pipe() // unbuffered: a write waits for a read
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	write := Conn(client)
	var w *Writer
	w = NewWriter(func(bufs [][]byte) (int, bool, error) {
		client.SetWriteDeadline(w.Deadline())
		return write(bufs)
	}, Options{})
	now := time.Now()
	deadlines := []time.Time{now.Add(20 * time.Millisecond), now.Add(200 * time.Millisecond), now.Add(50 * time.Millisecond)}
	for k, d := range deadlines {
		if _, err := w.Push(testFrame(0, k, 10), d); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		n   int
		err error
	}
	flushed := make(chan result, 1)
	go func() {
		n, _, err := w.Flush()
		flushed <- result{n, err}
	}()
	select {
	case r := <-flushed:
		if r.n != 0 || !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("Flush = %d, %v; want 0, os.ErrDeadlineExceeded", r.n, r.err)
		}
		if now := time.Now(); now.Before(deadlines[1]) {
			t.Fatalf("the write ended %v before the latest deadline of its frames", deadlines[1].Sub(now))
		}
	case <-time.After(10 * time.Second):
		client.Close() // ends the write
		<-flushed
		t.Fatal("the write still waits 10 s after its frames' deadlines")
	}
}
