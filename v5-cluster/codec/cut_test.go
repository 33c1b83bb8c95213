package codec_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"testing"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/v5-cluster/codec"
)

func TestCutFrame(t *testing.T) {
	whole := frameBytes(42) // a 3-byte meta and a 5-byte body: 24 bytes
	next := frameBytes(43)
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name     string
		in       []byte
		maxFrame int
		n        int
		need     int
		err      error        // nil: a frame is cut, or more bytes are needed
		hdr      codec.Header // the frame's header, or the refused one
		meta     string       // when n > 0
		body     string       // when n > 0
	}{
		{name: "empty", in: nil, maxFrame: 64, need: codec.HeaderLen},
		{name: "1 byte", in: whole[:1], maxFrame: 64, need: codec.HeaderLen},
		{name: "1 byte that is not magic is not judged yet", in: []byte("G"), maxFrame: 64, need: codec.HeaderLen},
		{name: "2 bytes of magic", in: whole[:2], maxFrame: 64, need: codec.HeaderLen},
		{name: "2 bytes, bad magic", in: []byte("GE"), maxFrame: 64, err: codec.ErrBadMagic},
		{name: "15 bytes", in: whole[:codec.HeaderLen-1], maxFrame: 64, need: codec.HeaderLen},
		{name: "15 bytes, bad magic", in: []byte("GET / HTTP/1.1\r"), maxFrame: 64, err: codec.ErrBadMagic},
		{name: "16 bytes, bad magic", in: []byte("GET / HTTP/1.1\r\n"), maxFrame: 64, err: codec.ErrBadMagic},
		{name: "header only", in: whole[:codec.HeaderLen], maxFrame: 64, need: 24},
		{name: "inside the meta", in: whole[:codec.HeaderLen+2], maxFrame: 64, need: 24},
		{name: "one byte short", in: whole[:23], maxFrame: 64, need: 24},
		{name: "exactly one frame", in: whole, maxFrame: 64, n: 24, need: 24, hdr: request(42, 3, 5), meta: "met", body: "abody"},
		{name: "one frame and part of the next", in: join(whole, next[:5]), maxFrame: 64, n: 24, need: 24, hdr: request(42, 3, 5), meta: "met", body: "abody"},
		{name: "one frame and the next header", in: join(whole, next[:codec.HeaderLen]), maxFrame: 64, n: 24, need: 24, hdr: request(42, 3, 5), meta: "met", body: "abody"},
		{name: "two frames", in: join(whole, next), maxFrame: 64, n: 24, need: 24, hdr: request(42, 3, 5), meta: "met", body: "abody"},
		{name: "empty payload", in: header(request(9, 0, 0)), maxFrame: 0, n: 16, need: 16, hdr: request(9, 0, 0)},
		{name: "exact limit", in: whole, maxFrame: 8, n: 24, need: 24, hdr: request(42, 3, 5), meta: "met", body: "abody"},

		{name: "one over the limit", in: whole, maxFrame: 7, err: codec.ErrFrameTooLarge, hdr: request(42, 3, 5)},
		{name: "over the limit, header only", in: header(request(7, 0, 1<<31)), maxFrame: codec.DefaultMaxFrameSize, err: codec.ErrFrameTooLarge, hdr: request(7, 0, 1<<31)},
		{name: "lengths that wrap 32 bits", in: header(request(6, 0x10, 0xFFFFFFF8)), maxFrame: codec.DefaultMaxFrameSize, err: codec.ErrFrameTooLarge, hdr: request(6, 0x10, 0xFFFFFFF8)},
		{name: "both lengths near 4 GiB", in: header(request(8, math.MaxUint32, math.MaxUint32)), maxFrame: math.MaxInt, err: codec.ErrMetaTooLarge, hdr: request(8, math.MaxUint32, math.MaxUint32)},
		{name: "meta over 64 KiB", in: header(request(5, codec.MaxMetaLen+1, 0)), maxFrame: math.MaxInt32, err: codec.ErrMetaTooLarge, hdr: request(5, codec.MaxMetaLen+1, 0)},
		{name: "negative limit", in: header(request(4, 0, 0)), maxFrame: -1, err: codec.ErrFrameTooLarge, hdr: request(4, 0, 0)},
		{name: "response type", in: header(codec.Header{Version: codec.Version, Type: codec.TypeResponse, Seq: 7}), maxFrame: 64, err: codec.ErrBadType, hdr: codec.Header{Version: codec.Version, Type: codec.TypeResponse, Seq: 7}},
		{name: "version 2", in: join(header(codec.Header{Version: 2, Type: codec.TypeRequest, Seq: 8, BodyLen: 2}), []byte("hi")), maxFrame: 64, err: codec.ErrBadVersion, hdr: codec.Header{Version: 2, Type: codec.TypeRequest, Seq: 8, BodyLen: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, need, err := codec.CutFrame(tt.in, codec.TypeRequest, tt.maxFrame)
			if n != tt.n || need != tt.need {
				t.Fatalf("CutFrame(% x) n, need = %d, %d; want %d, %d (err %v)", tt.in, n, need, tt.n, tt.need, err)
			}
			if tt.err != nil || err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("CutFrame error = %v, want %v", err, tt.err)
				}
				if f.Header != tt.hdr || f.Meta != nil || f.Body != nil {
					t.Fatalf("CutFrame returned %+v, meta %q, body %q with error %v; want header %+v only", f.Header, f.Meta, f.Body, err, tt.hdr)
				}
				return
			}
			if n == 0 {
				if f.Header != (codec.Header{}) || f.Meta != nil || f.Body != nil {
					t.Fatalf("CutFrame returned %+v, meta %q, body %q for an incomplete frame", f.Header, f.Meta, f.Body)
				}
				return
			}
			if f.Header != tt.hdr || string(f.Meta) != tt.meta || string(f.Body) != tt.body {
				t.Fatalf("CutFrame = %+v, meta %q, body %q; want %+v, %q, %q", f.Header, f.Meta, f.Body, tt.hdr, tt.meta, tt.body)
			}
		})
	}
}

// TestCutFrameAliasesInput checks that a cut frame's meta and body are the
// input's own bytes, with their capacity clamped: appending to either must
// not overwrite what follows it in the buffer.
func TestCutFrameAliasesInput(t *testing.T) {
	tests := []struct {
		name          string
		metaLen, body int
	}{
		{"meta and body", 3, 5},
		{"no meta", 0, 5},
		{"no body", 4, 0},
		{"neither", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := header(request(1, uint32(tt.metaLen), uint32(tt.body)))
			for k := range tt.metaLen + tt.body {
				first = append(first, byte('a'+k))
			}
			next := frameBytes(2)
			buf := append(bytes.Clone(first), next...)
			f, n, _, err := codec.CutFrame(buf, codec.TypeRequest, 64)
			if err != nil || n != len(first) {
				t.Fatalf("CutFrame = n %d, %v; want %d, nil", n, err, len(first))
			}
			metaEnd := codec.HeaderLen + tt.metaLen
			if len(f.Meta) != tt.metaLen || len(f.Body) != tt.body {
				t.Fatalf("meta, body are %d, %d bytes; want %d, %d", len(f.Meta), len(f.Body), tt.metaLen, tt.body)
			}
			if cap(f.Meta) != len(f.Meta) || cap(f.Body) != len(f.Body) {
				t.Fatalf("meta, body capacities are %d, %d; want them clamped to %d, %d", cap(f.Meta), cap(f.Body), len(f.Meta), len(f.Body))
			}
			if tt.metaLen > 0 && &f.Meta[0] != &buf[codec.HeaderLen] {
				t.Fatal("meta does not alias the input")
			}
			if tt.body > 0 && &f.Body[0] != &buf[metaEnd] {
				t.Fatal("body does not alias the input")
			}

			_ = append(f.Meta, "XXXXXXXX"...)
			_ = append(f.Body, "YYYYYYYYYYYYYYYYYYYYYYYY"...)
			if !bytes.Equal(buf[:n], first) || !bytes.Equal(buf[n:], next) {
				t.Fatalf("appending to meta and body changed the buffer:\n% x\nwant\n% x", buf, append(bytes.Clone(first), next...))
			}
			g, n2, _, err := codec.CutFrame(buf[n:], codec.TypeRequest, 64)
			if err != nil || n2 != len(next) || g.Seq != 2 || string(g.Meta) != "met" || string(g.Body) != "abody" {
				t.Fatalf("the next frame cuts to %+v %q %q, n %d, %v", g.Header, g.Meta, g.Body, n2, err)
			}
		})
	}
}

// TestCutFrameAllocs checks that cutting a frame, or finding that one is
// incomplete, allocates nothing.
func TestCutFrameAllocs(t *testing.T) {
	whole := frameBytes(42)
	tests := []struct {
		name string
		in   []byte
	}{
		{"whole frame", whole},
		{"partial header", whole[:7]},
		{"partial payload", whole[:20]},
		{"two frames", append(bytes.Clone(whole), whole...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() {
				if _, _, _, err := codec.CutFrame(tt.in, codec.TypeRequest, 64); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Fatalf("CutFrame made %v allocations, want 0", n)
			}
		})
	}
}

// TestReliability1CutFrameHugeLengths gives CutFrame headers that claim
// up to 8 GiB: each is refused from its 16 bytes, with its sequence id, and
// costs only its error value, never a buffer for what it claims.
func TestReliability1CutFrameHugeLengths(t *testing.T) {
	tests := []struct {
		name     string
		h        codec.Header
		maxFrame int
		err      error
	}{
		{"body ~4 GiB", request(11, 0, math.MaxUint32), codec.DefaultMaxFrameSize, codec.ErrFrameTooLarge},
		{"32-bit wrap", request(12, 0x10, 0xFFFFFFF8), codec.DefaultMaxFrameSize, codec.ErrFrameTooLarge},
		{"meta ~4 GiB", request(13, math.MaxUint32, 0), math.MaxInt, codec.ErrMetaTooLarge},
		{"both ~4 GiB", request(14, math.MaxUint32, math.MaxUint32), math.MaxInt, codec.ErrMetaTooLarge},
		{"body ~4 GiB under a 1 GiB limit", request(15, 0, math.MaxUint32), 1 << 30, codec.ErrFrameTooLarge},
	}
	const runs = 100
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := header(tt.h)
			cut := func() {
				f, n, need, err := codec.CutFrame(in, codec.TypeRequest, tt.maxFrame)
				if !errors.Is(err, tt.err) || n != 0 || need != 0 || f.Seq != tt.h.Seq {
					t.Fatalf("CutFrame = seq %d, n %d, need %d, %v; want seq %d, 0, 0, %v", f.Seq, n, need, err, tt.h.Seq, tt.err)
				}
			}
			cut()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				cut()
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / runs; per >= 1<<10 {
				t.Fatalf("refusing a header allocated %d bytes per call, want < 1 KiB (its error only)", per)
			}
			if n := testing.AllocsPerRun(runs, cut); n > 8 {
				t.Fatalf("refusing a header made %v allocations per call, want its error's few", n)
			}
		})
	}
}

// TestReliability25CutFrameByteByByte feeds frames to CutFrame one byte at
// a time, the way a stalled or slow connection delivers them: until a
// frame is whole, CutFrame asks for the header, then for the whole frame,
// and never blocks or refuses; each frame comes out the moment its last
// byte arrives.
func TestReliability25CutFrameByteByByte(t *testing.T) {
	hello := mustAppend(t, codec.TypeRequest, 7,
		&meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello", TimeoutMs: 1000},
		&helloworld.HelloRequest{Msg: "world"})
	tests := []struct {
		name   string
		frames [][]byte
	}{
		{"one frame", [][]byte{frameBytes(1)}},
		{"empty payload", [][]byte{header(request(2, 0, 0))}},
		{"frames back to back", [][]byte{frameBytes(3), hello, header(request(4, 0, 0)), frameBytes(5)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := bytes.Join(tt.frames, nil)
			var in []byte // what has arrived and is not cut yet
			next := 0
			for k, c := range stream {
				in = append(in, c)
				f, n, need, err := codec.CutFrame(in, codec.TypeRequest, codec.DefaultMaxFrameSize)
				if err != nil {
					t.Fatalf("byte %d: %v", k, err)
				}
				want := tt.frames[next]
				if len(in) < len(want) {
					wantNeed := len(want)
					if len(in) < codec.HeaderLen {
						wantNeed = codec.HeaderLen
					}
					if n != 0 || need != wantNeed {
						t.Fatalf("byte %d: %d of %d bytes of frame %d: n, need = %d, %d; want 0, %d", k, len(in), len(want), next, n, need, wantNeed)
					}
					continue
				}
				if n != len(want) || !bytes.Equal(in[:n], want) {
					t.Fatalf("byte %d: frame %d complete, but CutFrame gave n = %d, need %d", k, next, n, need)
				}
				re := append(header(f.Header), f.Meta...)
				if !bytes.Equal(append(re, f.Body...), want) {
					t.Fatalf("frame %d cut to %+v, which does not re-encode to its bytes", next, f.Header)
				}
				in = in[n:]
				next++
			}
			if next != len(tt.frames) || len(in) != 0 {
				t.Fatalf("%d of %d frames cut, %d bytes left over", next, len(tt.frames), len(in))
			}
		})
	}
}

// cutFuzzMaxFrame is FuzzCutFrame's frame limit: small, so the fuzzer
// reaches both sides of it.
const cutFuzzMaxFrame = 1024

// FuzzCutFrame checks CutFrame on arbitrary bytes against its contract
// and against ReadFrame: a frame it cuts is exactly the bytes it says,
// what it asks for is enough and within the limit, and it accepts and
// refuses what ReadFrame does.
func FuzzCutFrame(f *testing.F) {
	hello := mustAppend(f, codec.TypeRequest, 1,
		&meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello", TimeoutMs: 1000},
		&helloworld.HelloRequest{Msg: "world"})
	f.Add(hello)
	f.Add(append(bytes.Clone(hello), hello...))
	f.Add(hello[:len(hello)-1])
	f.Add(hello[:codec.HeaderLen-1])
	f.Add(hello[:2])
	f.Add(header(request(2, 0, 0)))
	f.Add(header(request(3, 0x10, 0xFFFFFFF8)))
	f.Add(header(request(4, 0, cutFuzzMaxFrame+1)))
	f.Add(append(header(request(5, 0, cutFuzzMaxFrame)), make([]byte, cutFuzzMaxFrame)...))
	f.Add([]byte("GE"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		fr, n, need, err := codec.CutFrame(data, codec.TypeRequest, cutFuzzMaxFrame)
		rf, rerr := codec.ReadFrame(bytes.NewReader(data), codec.TypeRequest, cutFuzzMaxFrame)

		switch {
		case err != nil:
			if n != 0 || need != 0 || fr.Meta != nil || fr.Body != nil {
				t.Fatalf("CutFrame returned n %d, need %d, meta %d, body %d bytes with error %v", n, need, len(fr.Meta), len(fr.Body), err)
			}
			if len(data) < codec.HeaderLen {
				// Refused before the header is whole: only a wrong
				// magic, which ReadFrame refuses too once it has 16
				// bytes.
				if len(data) < 2 || !errors.Is(err, codec.ErrBadMagic) || fr.Header != (codec.Header{}) {
					t.Fatalf("CutFrame refused %d bytes % x: %+v, %v", len(data), data, fr.Header, err)
				}
				padded := append(bytes.Clone(data), make([]byte, codec.HeaderLen-len(data))...)
				if _, perr := codec.ReadFrame(bytes.NewReader(padded), codec.TypeRequest, cutFuzzMaxFrame); !errors.Is(perr, codec.ErrBadMagic) {
					t.Fatalf("CutFrame refused % x as bad magic; ReadFrame of it padded to a header says %v", data, perr)
				}
				return
			}
			if rerr == nil || rerr.Error() != err.Error() || rf.Header != fr.Header {
				t.Fatalf("CutFrame refused % x with %+v, %v; ReadFrame says %+v, %v", data[:codec.HeaderLen], fr.Header, err, rf.Header, rerr)
			}

		case n > 0:
			total := codec.HeaderLen + int(fr.MetaLen) + int(fr.BodyLen)
			if n > len(data) || n != total || need != n {
				t.Fatalf("CutFrame n %d, need %d for a %d-byte frame in %d bytes", n, need, total, len(data))
			}
			if fr.Version != codec.Version || fr.Type != codec.TypeRequest || fr.MetaLen > codec.MaxMetaLen || total-codec.HeaderLen > cutFuzzMaxFrame {
				t.Fatalf("CutFrame accepted %+v, which breaks the limits", fr.Header)
			}
			if !bytes.Equal(header(fr.Header), data[:codec.HeaderLen]) {
				t.Fatalf("header %+v re-encodes to % x, the input has % x", fr.Header, header(fr.Header), data[:codec.HeaderLen])
			}
			metaEnd := codec.HeaderLen + int(fr.MetaLen)
			if !bytes.Equal(fr.Meta, data[codec.HeaderLen:metaEnd]) || !bytes.Equal(fr.Body, data[metaEnd:n]) ||
				cap(fr.Meta) != len(fr.Meta) || cap(fr.Body) != len(fr.Body) {
				t.Fatal("meta and body are not the input's bytes with clamped capacity")
			}
			if rerr != nil || rf.Header != fr.Header || !bytes.Equal(rf.Meta, fr.Meta) || !bytes.Equal(rf.Body, fr.Body) {
				t.Fatalf("CutFrame cut %+v; ReadFrame says %+v, %v", fr.Header, rf.Header, rerr)
			}
			// The frame's bytes alone cut the same; one byte fewer asks
			// for the rest.
			if _, n2, _, err2 := codec.CutFrame(data[:n], codec.TypeRequest, cutFuzzMaxFrame); n2 != n || err2 != nil {
				t.Fatalf("the frame alone cuts to n %d, %v; want %d", n2, err2, n)
			}
			wantNeed := n
			if n-1 < codec.HeaderLen {
				wantNeed = codec.HeaderLen
			}
			if _, n3, need3, err3 := codec.CutFrame(data[:n-1], codec.TypeRequest, cutFuzzMaxFrame); n3 != 0 || need3 != wantNeed || err3 != nil {
				t.Fatalf("the frame less one byte cuts to n %d, need %d, %v; want 0, %d, nil", n3, need3, err3, wantNeed)
			}

		default: // more bytes needed
			if fr.Header != (codec.Header{}) || fr.Meta != nil || fr.Body != nil {
				t.Fatalf("CutFrame returned %+v and a payload with n == 0", fr.Header)
			}
			if len(data) < codec.HeaderLen {
				if need != codec.HeaderLen {
					t.Fatalf("CutFrame of %d bytes asks for %d, want the header's %d", len(data), need, codec.HeaderLen)
				}
			} else {
				if need <= len(data) || need > codec.HeaderLen+cutFuzzMaxFrame {
					t.Fatalf("CutFrame of %d bytes asks for %d: not more, or over the limit %d", len(data), need, codec.HeaderLen+cutFuzzMaxFrame)
				}
				h, herr := codec.DecodeHeader(data)
				if herr != nil || need != codec.HeaderLen+int(h.MetaLen)+int(h.BodyLen) {
					t.Fatalf("CutFrame asks for %d bytes; the header %+v (%v) says otherwise", need, h, herr)
				}
			}
			wantErr := io.ErrUnexpectedEOF
			if len(data) == 0 {
				wantErr = io.EOF
			}
			if !errors.Is(rerr, wantErr) {
				t.Fatalf("CutFrame waits for more of % x; ReadFrame says %v, want %v", data, rerr, wantErr)
			}
			// What it asked for is enough: with that many bytes it cuts
			// the frame, or at least judges the header.
			padded := append(bytes.Clone(data), make([]byte, need-len(data))...)
			_, pn, pneed, perr := codec.CutFrame(padded, codec.TypeRequest, cutFuzzMaxFrame)
			if len(data) >= codec.HeaderLen && (pn != need || perr != nil) {
				t.Fatalf("given the %d bytes it asked for, CutFrame cuts n %d, %v", need, pn, perr)
			}
			if pn == 0 && perr == nil && pneed <= len(padded) {
				t.Fatalf("given the %d bytes it asked for, CutFrame asks for %d", need, pneed)
			}
		}
	})
}
