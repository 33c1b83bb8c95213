package writev

import (
	"errors"
	"io"
	"net"
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

// TestConnFramesArriveWholeInOrder sends frames from many goroutines
// through a Sender over a TCP connection: the peer reads each whole, in
// each producer's order.
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
			s := NewSender(guard(Conn(client)), Options{Release: rel.release})

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
						if _, err := s.Send(f); err != nil {
							t.Errorf("producer %d: Send: %v", p, err)
							return
						}
					}
				})
			}
			wg.Wait()
			r := <-read
			if r.err != nil {
				t.Fatalf("reading %d bytes: %v", total, r.err)
			}
			ids, err := splitTestFrames(r.got)
			if err != nil {
				t.Fatal(err)
			}
			checkProducerOrder(t, ids, tt.producers, tt.each)
			if !s.Idle() {
				t.Fatal("not Idle after every Send returned")
			}
			rel.checkOnce(t, all)
		})
	}
}

// TestConnWriteErrorFailsSender closes the connection under a Sender: the
// write error reaches the Send, and later Sends, and the frames are
// released.
func TestConnWriteErrorFailsSender(t *testing.T) {
	client, _ := tcpPair(t)
	rel := newReleaseLog()
	s := NewSender(guard(Conn(client)), Options{Release: rel.release})
	frames := sizedFrames(2)
	if _, err := s.Send(frames[0]); err != nil {
		t.Fatalf("Send on an open connection: %v", err)
	}
	client.Close()
	for _, f := range frames[1:] {
		if _, err := s.Send(f); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Send on a closed connection = %v, want net.ErrClosed", err)
		}
	}
	if _, err := s.Send(testFrame(9, 9, 9)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a later Send = %v, want the same net.ErrClosed", err)
	}
	if !s.Idle() {
		t.Fatal("a failed sender is not Idle")
	}
	if got := rel.released(); got != 3 {
		t.Fatalf("%d frames released, want 3", got)
	}
}
