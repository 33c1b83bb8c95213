package mux

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/meta"
	"myrpc/v5-cluster/codec"
)

// chunkReader returns data in the pieces chunks gives: a chunk of 0 is a
// read that times out with nothing read, as a read cut short by a deadline
// does; after the last chunk, the rest comes in pieces of 7 bytes.
type chunkReader struct {
	data   []byte
	chunks []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	size := 7
	if len(r.chunks) > 0 {
		size, r.chunks = int(r.chunks[0]), r.chunks[1:]
		if size == 0 {
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p[:min(len(p), size)], r.data)
	r.data = r.data[n:]
	return n, nil
}

const inboxFuzzMaxFrame = 1 << 20

// FuzzInbox checks that an inbox cuts the same frames out of a stream as
// codec.ReadFrame does, however the reads split it and wherever a read is
// cut short, and that it never holds much more than what has arrived.
func FuzzInbox(f *testing.F) {
	var stream []byte
	for seq := range uint32(3) {
		b, err := codec.AppendFrame(nil, codec.TypeResponse, seq+1, &meta.ResponseMeta{}, &echo.EchoReply{Payload: bytes.Repeat([]byte("x"), int(seq)*100)}, inboxFuzzMaxFrame)
		if err != nil {
			f.Fatal(err)
		}
		stream = append(stream, b...)
	}
	f.Add(stream, []byte{1, 0, 15, 0, 0, 200})
	f.Add(stream[:len(stream)-1], []byte{255, 0})
	f.Add(stream[:20], []byte{})
	big := append(bytes.Clone(stream[:codec.HeaderLen]), make([]byte, 100)...)
	big[12], big[13] = 0x0F, 0xFF // a body that claims about 1 MiB
	f.Add(big, []byte{16, 0, 50})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), []byte{3, 0})
	f.Add([]byte{}, []byte{0})

	f.Fuzz(func(t *testing.T, data, chunks []byte) {
		ref := bufio.NewReader(bytes.NewReader(data))
		in := newInbox(&chunkReader{data: data, chunks: chunks}, inboxFuzzMaxFrame)
		for i := 0; ; i++ {
			want, wantErr := codec.ReadFrame(ref, codec.TypeResponse, inboxFuzzMaxFrame)
			got, err := in.next()
			for errors.Is(err, os.ErrDeadlineExceeded) {
				got, err = in.next() // a read cut short: go on where it stopped
			}
			if len(in.buf) > 2*len(data)+inboxStep+inboxSize {
				t.Fatalf("frame %d: the inbox holds %d bytes for a stream of %d", i, len(in.buf), len(data))
			}
			if wantErr != nil {
				if err == nil {
					t.Fatalf("frame %d: inbox returned a frame (seq %d), ReadFrame %v", i, got.Seq, wantErr)
				}
				// ReadFrame waits for 16 bytes before it looks at the
				// magic, the inbox refuses a wrong one on its first two:
				// at the end of a stream they can differ there, and only
				// there (no sentinel below).
				for _, sentinel := range []error{codec.ErrFrameTooLarge, codec.ErrMetaTooLarge, codec.ErrBadVersion, codec.ErrBadType, io.EOF} {
					if errors.Is(wantErr, sentinel) && !errors.Is(err, sentinel) {
						t.Fatalf("frame %d: inbox error %v, ReadFrame's %v", i, err, wantErr)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("frame %d: inbox error %v, ReadFrame returned seq %d", i, err, want.Seq)
			}
			if got.Header != want.Header || !bytes.Equal(got.Meta, want.Meta) || !bytes.Equal(got.Body, want.Body) {
				t.Fatalf("frame %d: inbox frame %+v differs from ReadFrame's %+v", i, got.Header, want.Header)
			}
		}
	})
}
