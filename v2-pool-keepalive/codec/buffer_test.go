package codec_test

import (
	"testing"

	"myrpc/v2-pool-keepalive/codec"
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
	}
}
