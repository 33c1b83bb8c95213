package codec_test

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/meta"
	"myrpc/v5-cluster/codec"
)

// benchSizes are the echo payload sizes the codec benchmarks run at.
var benchSizes = []struct {
	name string
	n    int
}{
	{"64B", 64},
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
}

// echoCall returns the meta and body of an Echo request carrying n bytes.
func echoCall(n int) (*meta.RequestMeta, *echo.EchoRequest) {
	rm := &meta.RequestMeta{Service: "myrpc.echo.Echo", Method: "Echo", TimeoutMs: 1000}
	return rm, &echo.EchoRequest{Payload: bytes.Repeat([]byte{'x'}, n)}
}

func BenchmarkEncode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%s", size.name), func(b *testing.B) {
			rm, req := echoCall(size.n)
			dst, err := codec.AppendFrame(nil, codec.TypeRequest, 1, rm, req, codec.DefaultMaxFrameSize)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(dst)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				dst, err = codec.AppendFrame(dst[:0], codec.TypeRequest, uint32(i), rm, req, codec.DefaultMaxFrameSize)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%s", size.name), func(b *testing.B) {
			rm, req := echoCall(size.n)
			frame, err := codec.AppendFrame(nil, codec.TypeRequest, 1, rm, req, codec.DefaultMaxFrameSize)
			if err != nil {
				b.Fatal(err)
			}
			r := bytes.NewReader(frame)
			var body echo.EchoRequest
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r.Reset(frame)
				f, err := codec.ReadFrame(r, codec.TypeRequest, codec.DefaultMaxFrameSize)
				if err != nil {
					b.Fatal(err)
				}
				m, err := codec.DecodeRequestMeta(f.Meta)
				if err != nil {
					b.Fatal(err)
				}
				if m.Method != "Echo" {
					b.Fatalf("method %q", m.Method)
				}
				if err := proto.Unmarshal(f.Body, &body); err != nil {
					b.Fatal(err)
				}
				if len(body.Payload) != size.n {
					b.Fatalf("payload is %d bytes, want %d", len(body.Payload), size.n)
				}
			}
		})
	}
}
