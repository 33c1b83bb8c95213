package codec

import "sync"

// maxPooledBuffer is the largest buffer kept for reuse: a rare big frame
// must not pin its memory in the pool.
const maxPooledBuffer = 64 << 10

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// GetBuffer returns an empty buffer for AppendFrame from a pool, so that
// encoding a frame need not allocate. Give it back with PutBuffer once the
// frame has been written.
func GetBuffer() *[]byte {
	return buffers.Get().(*[]byte)
}

// PutBuffer gives a buffer back to the pool. b must hold the slice as
// AppendFrame last returned it, so that its growth is kept; the caller
// must not use the buffer afterwards.
func PutBuffer(b *[]byte) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	buffers.Put(b)
}

// ReleaseBuffer gives a frame's buffer back to the pool when the frame was
// handed over by value, as a writev.Writer hands back what it has written.
// b must not be used afterwards.
func ReleaseBuffer(b []byte) {
	if cap(b) > maxPooledBuffer {
		return
	}
	bp := new([]byte)
	*bp = b[:0]
	buffers.Put(bp)
}
