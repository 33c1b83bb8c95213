package codec_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/v5-cluster/codec"
)

// header returns the 16 bytes that encode h.
func header(h codec.Header) []byte {
	b := make([]byte, codec.HeaderLen)
	codec.PutHeader(b, h)
	return b
}

// request is a header that passes Check for a request frame.
func request(seq, metaLen, bodyLen uint32) codec.Header {
	return codec.Header{Version: codec.Version, Type: codec.TypeRequest, Seq: seq, MetaLen: metaLen, BodyLen: bodyLen}
}

// mustAppend encodes one frame and fails the test if that is refused.
func mustAppend(t testing.TB, typ codec.Type, seq uint32, m, body proto.Message) []byte {
	t.Helper()
	b, err := codec.AppendFrame(nil, typ, seq, m, body, codec.DefaultMaxFrameSize)
	if err != nil {
		t.Fatalf("AppendFrame: %v", err)
	}
	return b
}

func TestHeaderWireLayout(t *testing.T) {
	h := codec.Header{Version: 1, Type: codec.TypeResponse, Seq: 0x01020304, MetaLen: 0x0A0B0C0D, BodyLen: 0xDEADBEEF}
	want := []byte{
		'M', 'R', 0x01, 0x02,
		0x01, 0x02, 0x03, 0x04,
		0x0A, 0x0B, 0x0C, 0x0D,
		0xDE, 0xAD, 0xBE, 0xEF,
	}
	if got := header(h); !bytes.Equal(got, want) {
		t.Fatalf("PutHeader(%+v) = % x, want % x", h, got, want)
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		h    codec.Header
	}{
		{"zero", codec.Header{}},
		{"request", request(7, 30, 12)},
		{"response", codec.Header{Version: codec.Version, Type: codec.TypeResponse, Seq: 1, MetaLen: 2}},
		{"max fields", codec.Header{Version: math.MaxUint8, Type: math.MaxUint8, Seq: math.MaxUint32, MetaLen: math.MaxUint32, BodyLen: math.MaxUint32}},
		{"huge lengths", request(1, 0x10, 0xFFFFFFF8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// PutHeader must write only its 16 bytes, wherever they sit.
			buf := bytes.Repeat([]byte{0xAA}, codec.HeaderLen+4)
			codec.PutHeader(buf[2:], tt.h)
			if buf[0] != 0xAA || buf[1] != 0xAA || buf[len(buf)-2] != 0xAA || buf[len(buf)-1] != 0xAA {
				t.Fatalf("PutHeader wrote outside its 16 bytes: % x", buf)
			}
			got, err := codec.DecodeHeader(buf[2:])
			if err != nil {
				t.Fatalf("DecodeHeader: %v", err)
			}
			if got != tt.h {
				t.Fatalf("DecodeHeader(PutHeader(%+v)) = %+v", tt.h, got)
			}
		})
	}
}

func TestDecodeHeaderBadMagic(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"http", []byte("GET / HTTP/1.1\r\n")},
		{"zeros", make([]byte, codec.HeaderLen)},
		{"swapped magic", append([]byte("RM"), header(request(1, 0, 0))[2:]...)},
		{"tls client hello", append([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, make([]byte, 10)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := codec.DecodeHeader(tt.in)
			if !errors.Is(err, codec.ErrBadMagic) {
				t.Fatalf("DecodeHeader(%q) error = %v, want ErrBadMagic", tt.in, err)
			}
			if h != (codec.Header{}) {
				t.Fatalf("DecodeHeader(%q) = %+v with ErrBadMagic, want the zero header", tt.in, h)
			}
		})
	}
}

func TestHeaderCheck(t *testing.T) {
	const limit = 1 << 20
	tests := []struct {
		name     string
		h        codec.Header
		want     codec.Type
		maxFrame int
		err      error // nil: accepted
	}{
		{"small request", request(1, 40, 100), codec.TypeRequest, limit, nil},
		{"empty frame", request(1, 0, 0), codec.TypeRequest, limit, nil},
		{"empty frame, zero limit", request(1, 0, 0), codec.TypeRequest, 0, nil},
		{"response", codec.Header{Version: codec.Version, Type: codec.TypeResponse, MetaLen: 2}, codec.TypeResponse, limit, nil},
		{"meta+body == limit", request(1, 16, limit-16), codec.TypeRequest, limit, nil},
		{"body alone == limit", request(1, 0, limit), codec.TypeRequest, limit, nil},
		{"meta == 64 KiB", request(1, codec.MaxMetaLen, 0), codec.TypeRequest, limit, nil},
		{"default limit exactly", request(1, codec.MaxMetaLen, codec.DefaultMaxFrameSize-codec.MaxMetaLen), codec.TypeRequest, codec.DefaultMaxFrameSize, nil},

		{"version 0", codec.Header{Version: 0, Type: codec.TypeRequest}, codec.TypeRequest, limit, codec.ErrBadVersion},
		{"version 2", codec.Header{Version: 2, Type: codec.TypeRequest}, codec.TypeRequest, limit, codec.ErrBadVersion},
		{"version 255", codec.Header{Version: 255, Type: codec.TypeRequest}, codec.TypeRequest, limit, codec.ErrBadVersion},
		{"bad version wins over bad type", codec.Header{Version: 9, Type: 9}, codec.TypeRequest, limit, codec.ErrBadVersion},
		{"response where request wanted", codec.Header{Version: codec.Version, Type: codec.TypeResponse}, codec.TypeRequest, limit, codec.ErrBadType},
		{"request where response wanted", request(1, 0, 0), codec.TypeResponse, limit, codec.ErrBadType},
		{"type 0", codec.Header{Version: codec.Version, Type: 0}, codec.TypeRequest, limit, codec.ErrBadType},
		{"type 3", codec.Header{Version: codec.Version, Type: 3}, codec.TypeRequest, limit, codec.ErrBadType},
		{"bad type wins over size", codec.Header{Version: codec.Version, Type: 3, MetaLen: math.MaxUint32}, codec.TypeRequest, limit, codec.ErrBadType},

		{"meta 64 KiB + 1", request(1, codec.MaxMetaLen+1, 0), codec.TypeRequest, limit, codec.ErrMetaTooLarge},
		{"meta 4 GiB", request(1, math.MaxUint32, 0), codec.TypeRequest, limit, codec.ErrMetaTooLarge},
		{"meta over 64 KiB under a bigger frame limit", request(1, codec.MaxMetaLen+1, 0), codec.TypeRequest, math.MaxInt32, codec.ErrMetaTooLarge},
		{"both lengths max", request(1, math.MaxUint32, math.MaxUint32), codec.TypeRequest, limit, codec.ErrMetaTooLarge},
		{"meta+body == limit + 1", request(1, 16, limit-15), codec.TypeRequest, limit, codec.ErrFrameTooLarge},
		{"body alone over limit", request(1, 0, limit+1), codec.TypeRequest, limit, codec.ErrFrameTooLarge},
		{"meta under 64 KiB but over frame limit", request(1, 100, 0), codec.TypeRequest, 99, codec.ErrFrameTooLarge},
		{"body 4 GiB - 1", request(1, 0, math.MaxUint32), codec.TypeRequest, limit, codec.ErrFrameTooLarge},
		// In 32 bits these sums wrap to a small number.
		{"32-bit wrap to 8", request(1, 0x10, 0xFFFFFFF8), codec.TypeRequest, limit, codec.ErrFrameTooLarge},
		{"32-bit wrap to 0", request(1, 1, math.MaxUint32), codec.TypeRequest, limit, codec.ErrFrameTooLarge},
		{"32-bit wrap with max meta", request(1, codec.MaxMetaLen, math.MaxUint32-codec.MaxMetaLen+1), codec.TypeRequest, limit, codec.ErrFrameTooLarge},
		{"32-bit wrap under a 4 GiB limit", request(1, 0x10, 0xFFFFFFF8), codec.TypeRequest, math.MaxUint32, codec.ErrFrameTooLarge},
		{"negative limit", request(1, 0, 0), codec.TypeRequest, -1, codec.ErrFrameTooLarge},
		{"negative limit with a body", request(1, 1, 1), codec.TypeRequest, math.MinInt, codec.ErrFrameTooLarge},
	}
	sentinels := []error{codec.ErrBadMagic, codec.ErrBadVersion, codec.ErrBadType, codec.ErrMetaTooLarge, codec.ErrFrameTooLarge}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Check(tt.want, tt.maxFrame)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("%+v.Check(%d, %d) = %v, want nil", tt.h, tt.want, tt.maxFrame, err)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("%+v.Check(%d, %d) = %v, want %v", tt.h, tt.want, tt.maxFrame, err, tt.err)
			}
			for _, s := range sentinels {
				if s != tt.err && errors.Is(err, s) {
					t.Fatalf("%+v.Check(%d, %d) = %v, which also matches %v", tt.h, tt.want, tt.maxFrame, err, s)
				}
			}
			if !strings.HasPrefix(err.Error(), "rpc: ") {
				t.Fatalf("error %q does not start with \"rpc: \"", err)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	tests := []struct {
		name             string
		metaLen, bodyLen uint64
		maxFrame         int
		err              error
	}{
		{"fits", 10, 20, 30, nil},
		{"one over", 10, 21, 30, codec.ErrFrameTooLarge},
		{"meta limit", codec.MaxMetaLen, 0, codec.DefaultMaxFrameSize, nil},
		{"meta over", codec.MaxMetaLen + 1, 0, codec.DefaultMaxFrameSize, codec.ErrMetaTooLarge},
		{"meta max uint64", math.MaxUint64, 0, math.MaxInt, codec.ErrMetaTooLarge},
		{"body max uint64", 0, math.MaxUint64, math.MaxInt, codec.ErrFrameTooLarge},
		// A 64-bit sum wraps here: 64 KiB + (2^64 - 64 KiB) = 0.
		{"64-bit wrap to 0", codec.MaxMetaLen, math.MaxUint64 - codec.MaxMetaLen + 1, codec.DefaultMaxFrameSize, codec.ErrFrameTooLarge},
		{"64-bit wrap to 8", 0x10, math.MaxUint64 - 7, codec.DefaultMaxFrameSize, codec.ErrFrameTooLarge},
		{"negative limit", 0, 0, -1, codec.ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := codec.CheckSize(tt.metaLen, tt.bodyLen, tt.maxFrame)
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("CheckSize(%d, %d, %d) = %v, want %v", tt.metaLen, tt.bodyLen, tt.maxFrame, err, tt.err)
			}
		})
	}
}

// frameBytes is a request frame with a 3-byte meta and a 5-byte body.
func frameBytes(seq uint32) []byte {
	return append(header(request(seq, 3, 5)), "metabody!"[:8]...)
}

func TestReadFrame(t *testing.T) {
	errBoom := errors.New("boom")
	whole := frameBytes(42)
	tests := []struct {
		name     string
		r        io.Reader
		maxFrame int
		err      error        // nil: the frame is read
		seq      uint32       // on success
		meta     string       // on success
		body     string       // on success
		hdr      codec.Header // on error: the header the frame must hold (a refused one), or zero
		left     int          // bytes the reader must still hold afterwards; -1: don't check
	}{
		{name: "whole frame", r: bytes.NewReader(whole), maxFrame: 64, seq: 42, meta: "met", body: "abody", left: 0},
		{name: "one byte at a time", r: iotest.OneByteReader(bytes.NewReader(whole)), maxFrame: 64, seq: 42, meta: "met", body: "abody", left: -1},
		{name: "half reads", r: iotest.HalfReader(bytes.NewReader(whole)), maxFrame: 64, seq: 42, meta: "met", body: "abody", left: -1},
		{name: "data with EOF", r: iotest.DataErrReader(bytes.NewReader(whole)), maxFrame: 64, seq: 42, meta: "met", body: "abody", left: -1},
		{name: "stops at the frame's end", r: bytes.NewReader(append(frameBytes(42), "next"...)), maxFrame: 64, seq: 42, meta: "met", body: "abody", left: 4},
		{name: "exact limit", r: bytes.NewReader(whole), maxFrame: 8, seq: 42, meta: "met", body: "abody", left: 0},
		{name: "empty payload", r: bytes.NewReader(header(request(9, 0, 0))), maxFrame: 0, seq: 9, left: 0},

		{name: "clean EOF", r: bytes.NewReader(nil), maxFrame: 64, err: io.EOF, left: 0},
		{name: "EOF after 1 header byte", r: bytes.NewReader(whole[:1]), maxFrame: 64, err: io.ErrUnexpectedEOF, left: 0},
		{name: "EOF inside header", r: bytes.NewReader(whole[:codec.HeaderLen-1]), maxFrame: 64, err: io.ErrUnexpectedEOF, left: 0},
		{name: "EOF right after header", r: bytes.NewReader(whole[:codec.HeaderLen]), maxFrame: 64, err: io.ErrUnexpectedEOF, left: 0},
		{name: "EOF inside meta", r: bytes.NewReader(whole[:codec.HeaderLen+2]), maxFrame: 64, err: io.ErrUnexpectedEOF, left: 0},
		{name: "EOF inside body", r: bytes.NewReader(whole[:len(whole)-1]), maxFrame: 64, err: io.ErrUnexpectedEOF, left: 0},
		{name: "read error in header", r: iotest.ErrReader(errBoom), maxFrame: 64, err: errBoom, left: -1},
		{name: "read error in payload", r: io.MultiReader(bytes.NewReader(whole[:codec.HeaderLen+1]), iotest.ErrReader(errBoom)), maxFrame: 64, err: errBoom, left: -1},
		{name: "timeout in payload", r: iotest.TimeoutReader(bytes.NewReader(whole)), maxFrame: 64, err: iotest.ErrTimeout, left: -1},

		{name: "bad magic", r: bytes.NewReader([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), maxFrame: 64, err: codec.ErrBadMagic, left: 11},
		{name: "over limit", r: bytes.NewReader(whole), maxFrame: 7, err: codec.ErrFrameTooLarge, hdr: request(42, 3, 5), left: 8},
		{name: "meta over 64 KiB", r: bytes.NewReader(header(request(5, codec.MaxMetaLen+1, 0))), maxFrame: math.MaxInt32, err: codec.ErrMetaTooLarge, hdr: request(5, codec.MaxMetaLen+1, 0), left: 0},
		{name: "claims 4 GiB", r: bytes.NewReader(header(request(6, 0x10, 0xFFFFFFF8))), maxFrame: codec.DefaultMaxFrameSize, err: codec.ErrFrameTooLarge, hdr: request(6, 0x10, 0xFFFFFFF8), left: 0},
		{name: "response type", r: bytes.NewReader(header(codec.Header{Version: codec.Version, Type: codec.TypeResponse, Seq: 7})), maxFrame: 64, err: codec.ErrBadType, hdr: codec.Header{Version: codec.Version, Type: codec.TypeResponse, Seq: 7}, left: 0},
		{name: "version 2", r: bytes.NewReader(header(codec.Header{Version: 2, Type: codec.TypeRequest, Seq: 8})), maxFrame: 64, err: codec.ErrBadVersion, hdr: codec.Header{Version: 2, Type: codec.TypeRequest, Seq: 8}, left: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := codec.ReadFrame(tt.r, codec.TypeRequest, tt.maxFrame)
			if br, ok := tt.r.(*bytes.Reader); ok && tt.left >= 0 && br.Len() != tt.left {
				t.Errorf("reader holds %d bytes after ReadFrame, want %d", br.Len(), tt.left)
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ReadFrame error = %v, want %v", err, tt.err)
				}
				if f.Meta != nil || f.Body != nil {
					t.Fatalf("ReadFrame returned meta %q, body %q with error %v", f.Meta, f.Body, err)
				}
				if f.Header != tt.hdr {
					t.Fatalf("ReadFrame returned header %+v with error %v, want %+v", f.Header, err, tt.hdr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if f.Seq != tt.seq || f.Version != codec.Version || f.Type != codec.TypeRequest {
				t.Fatalf("ReadFrame header = %+v, want seq %d", f.Header, tt.seq)
			}
			if string(f.Meta) != tt.meta || string(f.Body) != tt.body {
				t.Fatalf("ReadFrame meta, body = %q, %q, want %q, %q", f.Meta, f.Body, tt.meta, tt.body)
			}
			if int(f.MetaLen) != len(f.Meta) || int(f.BodyLen) != len(f.Body) {
				t.Fatalf("header lengths %d, %d do not match meta %d, body %d bytes", f.MetaLen, f.BodyLen, len(f.Meta), len(f.Body))
			}
			// Appending to the meta must not overwrite the body.
			if len(f.Meta) > 0 {
				_ = append(f.Meta, 'X')
				if string(f.Body) != tt.body {
					t.Fatalf("appending to Meta changed Body to %q", f.Body)
				}
			}
		})
	}
}

func TestReadFrameRefusedHeaderKeepsHeader(t *testing.T) {
	h := request(0xCAFEF00D, 0x10, 0xFFFFFFF8)
	f, err := codec.ReadFrame(bytes.NewReader(header(h)), codec.TypeRequest, codec.DefaultMaxFrameSize)
	if !errors.Is(err, codec.ErrFrameTooLarge) {
		t.Fatalf("ReadFrame error = %v, want ErrFrameTooLarge", err)
	}
	if f.Header != h {
		t.Fatalf("ReadFrame returned header %+v, want %+v", f.Header, h)
	}
}

// TestReadFrameHugeHeaderAllocatesLittle checks that sixteen bytes claiming
// gigabytes cost a reader next to nothing.
func TestReadFrameHugeHeaderAllocatesLittle(t *testing.T) {
	tests := []struct {
		name     string
		h        codec.Header
		maxFrame int
	}{
		{"body ~4 GiB", request(1, 0, math.MaxUint32), codec.DefaultMaxFrameSize},
		{"32-bit wrap", request(1, 0x10, 0xFFFFFFF8), codec.DefaultMaxFrameSize},
		{"meta ~4 GiB", request(1, math.MaxUint32, 0), math.MaxInt},
		{"both ~4 GiB", request(1, math.MaxUint32, math.MaxUint32), math.MaxInt},
		{"body ~4 GiB under a 1 GiB limit", request(1, 0, math.MaxUint32), 1 << 30},
	}
	const runs = 50
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := header(tt.h)
			r := bytes.NewReader(in)
			read := func() {
				r.Reset(in)
				if _, err := codec.ReadFrame(r, codec.TypeRequest, tt.maxFrame); err == nil {
					t.Fatal("ReadFrame accepted a header claiming gigabytes")
				}
			}
			read()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				read()
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / runs; per >= 1<<20 {
				t.Fatalf("ReadFrame of a refused header allocated %d bytes per call, want < 1 MiB", per)
			}
			if n := testing.AllocsPerRun(runs, read); n > 16 {
				t.Fatalf("ReadFrame of a refused header made %v allocations per call, want a handful", n)
			}
		})
	}
}

// TestReadFramePromiseCostsLittle: a header that passes the checks is
// still only a promise. Sixteen bytes promising 4 MiB, followed by little
// or nothing, must not make the reader reserve 4 MiB: its buffer grows
// with the bytes that arrive.
func TestReadFramePromiseCostsLittle(t *testing.T) {
	tests := []struct {
		name string
		h    codec.Header
		// sent is how many bytes of the payload arrive before the end.
		sent int
	}{
		{"body, nothing after the header", request(1, 0, codec.DefaultMaxFrameSize), 0},
		{"meta and body, nothing after the header", request(1, codec.MaxMetaLen, codec.DefaultMaxFrameSize-codec.MaxMetaLen), 0},
		{"body, one byte", request(1, 0, codec.DefaultMaxFrameSize), 1},
		{"body, 100 KiB", request(1, 0, codec.DefaultMaxFrameSize), 100 << 10},
	}
	const runs = 20
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append(header(tt.h), make([]byte, tt.sent)...)
			r := bytes.NewReader(in)
			read := func() {
				r.Reset(in)
				if _, err := codec.ReadFrame(r, codec.TypeRequest, codec.DefaultMaxFrameSize); !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("ReadFrame of a frame cut short = %v, want io.ErrUnexpectedEOF", err)
				}
			}
			read()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				read()
			}
			runtime.ReadMemStats(&after)
			// The first 64 KiB, and then at most twice what arrived for
			// each doubling: far below the 4 MiB promised.
			limit := uint64(64<<10 + 4*tt.sent + 16<<10)
			if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > limit {
				t.Fatalf("ReadFrame allocated %d bytes per call for %d bytes received, want at most %d", per, tt.sent, limit)
			}
		})
	}
}

// TestReadFrameSizes: frames on either side of the reader's growth steps
// arrive whole, read at once or a little at a time, and a frame of up to
// 64 KiB costs the reader one allocation.
func TestReadFrameSizes(t *testing.T) {
	sizes := []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 128<<10 + 7, 1 << 20, codec.DefaultMaxFrameSize}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"at once", func(r io.Reader) io.Reader { return r }},
		{"half reads", iotest.HalfReader},
		{"data with EOF", iotest.DataErrReader},
	}
	for _, size := range sizes {
		metaLen := min(size/3, codec.MaxMetaLen)
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		in := append(header(request(3, uint32(metaLen), uint32(size-metaLen))), payload...)
		for _, rd := range readers {
			t.Run(fmt.Sprintf("%dB/%s", size, rd.name), func(t *testing.T) {
				f, err := codec.ReadFrame(rd.wrap(bytes.NewReader(in)), codec.TypeRequest, codec.DefaultMaxFrameSize)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(f.Meta, payload[:metaLen]) || !bytes.Equal(f.Body, payload[metaLen:]) {
					t.Fatalf("ReadFrame returned %d + %d bytes that differ from the %d + %d sent", len(f.Meta), len(f.Body), metaLen, size-metaLen)
				}
				if cap(f.Meta) != len(f.Meta) || cap(f.Body) != len(f.Body) {
					t.Fatalf("meta, body capacities %d, %d, want their lengths %d, %d", cap(f.Meta), cap(f.Body), len(f.Meta), len(f.Body))
				}
			})
		}
		if size <= 64<<10 {
			h, err := codec.DecodeHeader(in)
			if err != nil {
				t.Fatal(err)
			}
			r := bytes.NewReader(in[codec.HeaderLen:])
			n := testing.AllocsPerRun(20, func() {
				r.Reset(in[codec.HeaderLen:])
				if _, _, err := codec.ReadPayload(r, h); err != nil {
					t.Fatal(err)
				}
			})
			if n != 1 && size > 0 {
				t.Fatalf("ReadPayload of %d bytes made %v allocations, want 1", size, n)
			}
		}
	}
}

func TestAppendFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		typ  codec.Type
		seq  uint32
		meta proto.Message
		body proto.Message // nil: no body
	}{
		{
			name: "hello request",
			typ:  codec.TypeRequest,
			seq:  1,
			meta: &meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello", TimeoutMs: 250, Metadata: map[string]string{"trace-id": "abc123", "user": "ünïcødé"}},
			body: &helloworld.HelloRequest{Msg: "world"},
		},
		{
			name: "hello reply",
			typ:  codec.TypeResponse,
			seq:  math.MaxUint32,
			meta: &meta.ResponseMeta{Metadata: map[string]string{"server": "v1"}},
			body: &helloworld.HelloReply{Msg: "hello world"},
		},
		{
			name: "error response without body",
			typ:  codec.TypeResponse,
			seq:  77,
			meta: &meta.ResponseMeta{Code: 12, Message: "rpc: unknown method myrpc.helloworld.Greeter/Nope"},
		},
		{
			name: "empty messages",
			typ:  codec.TypeRequest,
			seq:  0,
			meta: &meta.RequestMeta{},
			body: &helloworld.HelloRequest{},
		},
		{
			name: "large body",
			typ:  codec.TypeRequest,
			seq:  3,
			meta: &meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello"},
			body: &helloworld.HelloRequest{Msg: strings.Repeat("x", 1<<20)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustAppend(t, tt.typ, tt.seq, tt.meta, tt.body)
			r := bytes.NewReader(b)
			f, err := codec.ReadFrame(r, tt.typ, codec.DefaultMaxFrameSize)
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if r.Len() != 0 {
				t.Fatalf("ReadFrame left %d of %d bytes", r.Len(), len(b))
			}
			if f.Version != codec.Version || f.Type != tt.typ || f.Seq != tt.seq {
				t.Fatalf("header = %+v, want version %d, type %d, seq %d", f.Header, codec.Version, tt.typ, tt.seq)
			}
			if want := proto.Size(tt.meta); int(f.MetaLen) != want {
				t.Fatalf("MetaLen = %d, want %d", f.MetaLen, want)
			}
			gotMeta := tt.meta.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(f.Meta, gotMeta); err != nil {
				t.Fatalf("unmarshal meta: %v", err)
			}
			if !proto.Equal(gotMeta, tt.meta) {
				t.Fatalf("meta = %v, want %v", gotMeta, tt.meta)
			}
			if tt.body == nil {
				if f.BodyLen != 0 || len(f.Body) != 0 {
					t.Fatalf("frame without body has BodyLen %d, body %q", f.BodyLen, f.Body)
				}
				return
			}
			gotBody := tt.body.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(f.Body, gotBody); err != nil {
				t.Fatalf("unmarshal body: %v", err)
			}
			if !proto.Equal(gotBody, tt.body) {
				t.Fatalf("body differs after the round trip (%d bytes)", len(f.Body))
			}
		})
	}
}

func TestAppendFrameAppends(t *testing.T) {
	prefix := []byte("earlier bytes")
	rm := &meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello"}
	body := &helloworld.HelloRequest{Msg: "world"}
	alone := mustAppend(t, codec.TypeRequest, 5, rm, body)

	tests := []struct {
		name string
		dst  []byte
	}{
		{"nil", nil},
		{"no room", append([]byte(nil), prefix...)},
		{"room to spare", append(make([]byte, 0, 1024), prefix...)},
		{"a frame already", append([]byte(nil), alone...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := append([]byte(nil), tt.dst...)
			out, err := codec.AppendFrame(tt.dst, codec.TypeRequest, 5, rm, body, codec.DefaultMaxFrameSize)
			if err != nil {
				t.Fatalf("AppendFrame: %v", err)
			}
			if !bytes.Equal(out[:len(before)], before) {
				t.Fatalf("AppendFrame changed the bytes already in dst: % x, want % x", out[:len(before)], before)
			}
			if !bytes.Equal(out[len(before):], alone) {
				t.Fatalf("appended frame = % x, want % x", out[len(before):], alone)
			}
		})
	}

	// Two frames appended to one buffer read back one after the other.
	buf := mustAppend(t, codec.TypeRequest, 1, rm, body)
	buf, err := codec.AppendFrame(buf, codec.TypeRequest, 2, rm, &helloworld.HelloRequest{Msg: "again"}, codec.DefaultMaxFrameSize)
	if err != nil {
		t.Fatalf("AppendFrame: %v", err)
	}
	r := bytes.NewReader(buf)
	for _, want := range []struct {
		seq uint32
		msg string
	}{{1, "world"}, {2, "again"}} {
		f, err := codec.ReadFrame(r, codec.TypeRequest, codec.DefaultMaxFrameSize)
		if err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		var got helloworld.HelloRequest
		if err := proto.Unmarshal(f.Body, &got); err != nil {
			t.Fatalf("unmarshal body: %v", err)
		}
		if f.Seq != want.seq || got.GetMsg() != want.msg {
			t.Fatalf("frame seq %d body %q, want seq %d body %q", f.Seq, got.GetMsg(), want.seq, want.msg)
		}
	}
	if _, err := codec.ReadFrame(r, codec.TypeRequest, codec.DefaultMaxFrameSize); err != io.EOF {
		t.Fatalf("ReadFrame after the last frame = %v, want io.EOF", err)
	}
}

func TestAppendFrameExactLimit(t *testing.T) {
	rm := &meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello"}
	body := &helloworld.HelloRequest{Msg: strings.Repeat("a", 200)}
	limit := proto.Size(rm) + proto.Size(body)

	out, err := codec.AppendFrame(nil, codec.TypeRequest, 1, rm, body, limit)
	if err != nil {
		t.Fatalf("AppendFrame at meta+body == limit: %v", err)
	}
	if _, err := codec.ReadFrame(bytes.NewReader(out), codec.TypeRequest, limit); err != nil {
		t.Fatalf("ReadFrame at meta+body == limit: %v", err)
	}
	if _, err := codec.AppendFrame(nil, codec.TypeRequest, 1, rm, body, limit-1); !errors.Is(err, codec.ErrFrameTooLarge) {
		t.Fatalf("AppendFrame at meta+body == limit+1 = %v, want ErrFrameTooLarge", err)
	}
}

func TestAppendFrameRefuses(t *testing.T) {
	rm := &meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello"}
	tests := []struct {
		name     string
		meta     proto.Message
		body     proto.Message
		maxFrame int
		err      error // a sentinel, or nil for any error
		msg      string
	}{
		{"body over limit", rm, &helloworld.HelloRequest{Msg: strings.Repeat("x", 100)}, 64, codec.ErrFrameTooLarge, ""},
		{"body over default limit", rm, &helloworld.HelloRequest{Msg: strings.Repeat("x", codec.DefaultMaxFrameSize)}, codec.DefaultMaxFrameSize, codec.ErrFrameTooLarge, ""},
		{"meta alone over limit", rm, nil, 8, codec.ErrFrameTooLarge, ""},
		{"meta over 64 KiB", &meta.RequestMeta{Metadata: map[string]string{"big": strings.Repeat("m", codec.MaxMetaLen)}}, nil, math.MaxInt32, codec.ErrMetaTooLarge, ""},
		{"body does not marshal", rm, &helloworld.HelloRequest{Msg: "bad utf-8 \xff"}, codec.DefaultMaxFrameSize, nil, "rpc: marshal body"},
		{"meta does not marshal", &meta.RequestMeta{Service: "\xc3"}, &helloworld.HelloRequest{}, codec.DefaultMaxFrameSize, nil, "rpc: marshal meta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := append(make([]byte, 0, 64), "kept"...)
			out, err := codec.AppendFrame(dst, codec.TypeRequest, 1, tt.meta, tt.body, tt.maxFrame)
			if err == nil {
				t.Fatalf("AppendFrame accepted the frame (%d bytes)", len(out)-len(dst))
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("AppendFrame error = %v, want %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("AppendFrame error = %q, want it to mention %q", err, tt.msg)
			}
			if string(out) != "kept" {
				t.Fatalf("AppendFrame returned %d bytes %q after an error, want dst unchanged: %q", len(out), out[:min(len(out), 32)], "kept")
			}
		})
	}
}
