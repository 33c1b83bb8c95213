package codec_test

import (
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/meta"
	"myrpc/v5-cluster/codec"
)

// garbage holds encodings no meta message accepts.
var garbage = []struct {
	name string
	in   []byte
}{
	{"field number 0", []byte{0x00}},
	{"truncated varint", []byte{0x18, 0xFF}},
	{"varint over 10 bytes", []byte{0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}},
	{"length past the end", []byte{0x0A, 0x05, 'a', 'b'}},
	{"stray end-group", []byte{0x0C}},
	{"unclosed group", []byte{0x0B}},
	{"field 2 not UTF-8", []byte{0x12, 0x01, 0xFF}},
	{"map entry past the end", []byte{0x22, 0x06, 0x0A, 0x01, 'k'}},
	{"http request", []byte("GET / HTTP/1.1\r\n")},
}

func TestDecodeRequestMeta(t *testing.T) {
	tests := []struct {
		name string
		m    *meta.RequestMeta
	}{
		{"empty", &meta.RequestMeta{}},
		{"hello", &meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello", TimeoutMs: 1500}},
		{"metadata", &meta.RequestMeta{
			Service:   "myrpc.echo.Echo",
			Method:    "Echo",
			TimeoutMs: math.MaxUint32,
			Metadata:  map[string]string{"trace-id": "4bf92f3577b34da6", "tenant": "ünïcødé", "empty": ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := proto.Marshal(tt.m)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := codec.DecodeRequestMeta(b)
			if err != nil {
				t.Fatalf("DecodeRequestMeta: %v", err)
			}
			if !proto.Equal(got, tt.m) {
				t.Fatalf("DecodeRequestMeta = %v, want %v", got, tt.m)
			}
		})
	}
	bad := append(garbage[:len(garbage):len(garbage)], []struct {
		name string
		in   []byte
	}{
		{"service not UTF-8", []byte{0x0A, 0x02, 0xC3, 0x28}},
		{"metadata key not UTF-8", []byte{0x22, 0x03, 0x0A, 0x01, 0xFF}},
		{"metadata value not UTF-8", []byte{0x22, 0x03, 0x12, 0x01, 0xFF}},
	}...)
	for _, g := range bad {
		t.Run("garbage/"+g.name, func(t *testing.T) {
			m, err := codec.DecodeRequestMeta(g.in)
			if err == nil {
				t.Fatalf("DecodeRequestMeta(% x) = %v, want an error", g.in, m)
			}
			if m != nil {
				t.Fatalf("DecodeRequestMeta(% x) returned %v with error %v, want nil", g.in, m, err)
			}
		})
	}
}

func TestDecodeResponseMeta(t *testing.T) {
	tests := []struct {
		name string
		m    *meta.ResponseMeta
	}{
		{"ok", &meta.ResponseMeta{}},
		{"resource exhausted", &meta.ResponseMeta{Code: 8, Message: "rpc: frame over the size limit"}},
		{"metadata", &meta.ResponseMeta{
			Code:     5,
			Message:  "no such greeting",
			Metadata: map[string]string{"server": "v1-basic", "retry-after": "1s"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := proto.Marshal(tt.m)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := codec.DecodeResponseMeta(b)
			if err != nil {
				t.Fatalf("DecodeResponseMeta: %v", err)
			}
			if !proto.Equal(got, tt.m) {
				t.Fatalf("DecodeResponseMeta = %v, want %v", got, tt.m)
			}
		})
	}
	bad := append(garbage[:len(garbage):len(garbage)], []struct {
		name string
		in   []byte
	}{
		{"metadata key not UTF-8", []byte{0x1A, 0x03, 0x0A, 0x01, 0xFF}},
		{"metadata value not UTF-8", []byte{0x1A, 0x03, 0x12, 0x01, 0xFF}},
	}...)
	for _, g := range bad {
		t.Run("garbage/"+g.name, func(t *testing.T) {
			m, err := codec.DecodeResponseMeta(g.in)
			if err == nil {
				t.Fatalf("DecodeResponseMeta(% x) = %v, want an error", g.in, m)
			}
			if m != nil {
				t.Fatalf("DecodeResponseMeta(% x) returned %v with error %v, want nil", g.in, m, err)
			}
		})
	}
}

func TestTimeoutMs(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want uint32
	}{
		{time.Nanosecond, 1},
		{time.Microsecond, 1},
		{time.Millisecond - 1, 1},
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{1500 * time.Microsecond, 2},
		{2 * time.Millisecond, 2},
		{time.Second, 1000},
		{time.Second + time.Nanosecond, 1001},
		{30 * time.Second, 30000},
		{math.MaxUint32 * time.Millisecond, math.MaxUint32},
		{math.MaxUint32*time.Millisecond - 1, math.MaxUint32},
		{math.MaxUint32*time.Millisecond + 1, math.MaxUint32},
		{(math.MaxUint32 + 1) * time.Millisecond, math.MaxUint32},
		{100 * 24 * 365 * time.Hour, math.MaxUint32},
		// time.Until of a deadline centuries away saturates here.
		{math.MaxInt64, math.MaxUint32},
		{math.MaxInt64 - time.Millisecond + 2, math.MaxUint32},
		// A deadline that passed while the call was set up must still be
		// sent as a deadline, never as 0 ("none").
		{0, 1},
		{-time.Second, 1},
		{math.MinInt64, 1},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			if got := codec.TimeoutMs(tt.d); got != tt.want {
				t.Fatalf("TimeoutMs(%d) = %d, want %d", int64(tt.d), got, tt.want)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		ms   uint32
		want time.Duration
	}{
		{0, 0},
		{1, time.Millisecond},
		{1500, 1500 * time.Millisecond},
		{math.MaxUint32, math.MaxUint32 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.want.String(), func(t *testing.T) {
			if got := codec.Timeout(tt.ms); got != tt.want {
				t.Fatalf("Timeout(%d) = %v, want %v", tt.ms, got, tt.want)
			}
		})
	}
}

// TestTimeoutRoundTrip checks that a deadline never shrinks on the wire: the
// server gets at least the time the client had.
func TestTimeoutRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{1, 999_999, time.Millisecond, 1_000_001, 1234567890, time.Hour} {
		if got := codec.Timeout(codec.TimeoutMs(d)); got < d || got >= d+time.Millisecond {
			t.Errorf("Timeout(TimeoutMs(%v)) = %v, want in [%v, %v)", d, got, d, d+time.Millisecond)
		}
	}
}
