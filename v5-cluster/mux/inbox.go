package mux

import (
	"io"

	"myrpc/v5-cluster/codec"
)

const (
	// inboxSize is an inbox's buffer at first, and the size it shrinks back
	// to once a larger frame has been read.
	inboxSize = 4 << 10
	// inboxStep is the least an inbox grows by for a frame larger than its
	// buffer: it grows with the bytes that arrive, doubling, never to the
	// size a header claims before the bytes are there.
	inboxStep = 64 << 10
)

// inbox cuts the response frames out of what a connection's reads bring.
// A read cut short (a lone call that stops reading when it ends) loses
// nothing: the part of a frame read so far waits in the buffer, and
// whoever reads next goes on from there. Whoever reads the connection owns
// its inbox.
type inbox struct {
	r          io.Reader
	maxFrame   int
	buf        []byte
	start, end int
}

func newInbox(r io.Reader, maxFrame int) *inbox {
	return &inbox{r: r, maxFrame: maxFrame, buf: make([]byte, inboxSize)}
}

// next returns the next response frame, reading as much as it needs. The
// frame's meta and body are its own, not the inbox's buffer. An error from
// the reader comes back as it is, but for an EOF inside a frame, which is
// io.ErrUnexpectedEOF; the bytes read before it stay.
func (in *inbox) next() (codec.Frame, error) {
	for {
		f, n, need, err := codec.CutFrame(in.buf[in.start:in.end], codec.TypeResponse, in.maxFrame)
		if err != nil {
			return f, err
		}
		if n > 0 {
			in.start += n
			out := make([]byte, len(f.Meta)+len(f.Body))
			copy(out, f.Meta)
			copy(out[len(f.Meta):], f.Body)
			f.Meta, f.Body = out[:len(f.Meta):len(f.Meta)], out[len(f.Meta):]
			if in.start == in.end {
				in.start, in.end = 0, 0
				if len(in.buf) > inboxStep {
					in.buf = make([]byte, inboxSize) // a big frame's buffer goes
				}
			}
			return f, nil
		}
		in.makeRoom(need)
		k, err := in.r.Read(in.buf[in.end:])
		in.end += k
		if err != nil && k == 0 {
			if err == io.EOF && in.end > in.start {
				err = io.ErrUnexpectedEOF // the connection ended inside a frame
			}
			return codec.Frame{}, err
		}
	}
}

// makeRoom makes room after the bytes held, for a frame of need bytes, or
// for the next step towards it.
func (in *inbox) makeRoom(need int) {
	held := in.end - in.start
	if in.start > 0 {
		// What is held is less than a frame: it moves to the front, so
		// that the read has the whole buffer to fill.
		copy(in.buf, in.buf[in.start:in.end])
		in.start, in.end = 0, held
	}
	if in.end < len(in.buf) {
		return
	}
	size := min(need, max(2*len(in.buf), inboxStep))
	if size <= len(in.buf) {
		size = len(in.buf) + inboxStep
	}
	grown := make([]byte, size)
	copy(grown, in.buf[:in.end])
	in.buf = grown
}
