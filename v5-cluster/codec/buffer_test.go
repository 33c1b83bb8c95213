package codec_test

import (
	"testing"

	"myrpc/v5-cluster/codec"
)

// TestBigBuffersLeaveThePool: a buffer that grew for a big frame is not
// kept for reuse, so that a rare big frame does not pin its memory.
func TestBigBuffersLeaveThePool(t *testing.T) {
	for range 100 {
		b := make([]byte, 0, 1<<20)
		codec.PutBuffer(&b)
		if got := codec.GetBuffer(); cap(*got) > 64<<10 {
			t.Fatalf("GetBuffer returned a buffer of %d bytes, which PutBuffer should have dropped", cap(*got))
		}
		// A frame handed over by value, as a writev.Writer hands back
		// what it has written.
		codec.ReleaseBuffer(make([]byte, 0, 1<<20))
		if got := codec.GetBuffer(); cap(*got) > 64<<10 {
			t.Fatalf("GetBuffer returned a buffer of %d bytes, which ReleaseBuffer should have dropped", cap(*got))
		}
	}
}
