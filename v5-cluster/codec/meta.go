package codec

import (
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/meta"
)

// DecodeRequestMeta decodes a request frame's meta.
func DecodeRequestMeta(b []byte) (*meta.RequestMeta, error) {
	m := new(meta.RequestMeta)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeResponseMeta decodes a response frame's meta. The meta of a plain
// success is empty (code 0, no message): it decodes to the zero message
// without going through protobuf.
func DecodeResponseMeta(b []byte) (*meta.ResponseMeta, error) {
	m := new(meta.ResponseMeta)
	if len(b) == 0 {
		return m, nil
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// TimeoutMs converts the time a caller has left into RequestMeta's
// timeout_ms. It rounds up, so a deadline less than a millisecond away is
// still sent as 1 ms rather than as 0 ("no deadline"), and it saturates at
// the largest uint32. d must be positive.
func TimeoutMs(d time.Duration) uint32 {
	// Divide first: adding 999999 ns before dividing overflows int64 for
	// d near its maximum, which time.Until returns for far-off deadlines.
	ms := d / time.Millisecond
	if d%time.Millisecond > 0 {
		ms++
	}
	if ms > math.MaxUint32 {
		return math.MaxUint32
	}
	if ms < 1 {
		return 1
	}
	return uint32(ms)
}

// Timeout converts timeout_ms back to a duration; 0 means no deadline.
func Timeout(ms uint32) time.Duration {
	return time.Duration(ms) * time.Millisecond
}
