package codec_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/v5-cluster/codec"
)

// fuzzMaxFrame is the frame limit of FuzzReadFrame: small, so the fuzzer
// reaches both sides of it.
const fuzzMaxFrame = 1024

// FuzzReadFrame feeds arbitrary bytes to ReadFrame and checks its answer
// against a model of the format written out in the test: what it reads,
// what it refuses, and that an accepted frame re-encodes to exactly the
// bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	hello := mustAppend(f, codec.TypeRequest, 1,
		&meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello", TimeoutMs: 1000},
		&helloworld.HelloRequest{Msg: "world"})
	f.Add(hello)
	f.Add(hello[:codec.HeaderLen-1])
	f.Add(hello[:len(hello)-1])
	f.Add(append(hello[:len(hello):len(hello)], hello...))
	f.Add(header(request(2, 0x10, 0xFFFFFFF8)))
	f.Add(header(request(3, 0, fuzzMaxFrame+1)))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		fr, err := codec.ReadFrame(r, codec.TypeRequest, fuzzMaxFrame)
		consumed := len(in) - r.Len()

		// The same bytes one at a time must give the same answer.
		fr1, err1 := codec.ReadFrame(iotest.OneByteReader(bytes.NewReader(in)), codec.TypeRequest, fuzzMaxFrame)
		if (err == nil) != (err1 == nil) || err != nil && err.Error() != err1.Error() ||
			fr.Header != fr1.Header || !bytes.Equal(fr.Meta, fr1.Meta) || !bytes.Equal(fr.Body, fr1.Body) {
			t.Fatalf("one-byte reads disagree: (%+v, %v) vs (%+v, %v)", fr.Header, err, fr1.Header, err1)
		}

		fail := func(wantErr error, wantConsumed int, wantHdr codec.Header) {
			t.Helper()
			if !errors.Is(err, wantErr) {
				t.Fatalf("ReadFrame(% x) error = %v, want %v", in, err, wantErr)
			}
			if consumed != wantConsumed {
				t.Fatalf("ReadFrame consumed %d bytes, want %d", consumed, wantConsumed)
			}
			if fr.Header != wantHdr || fr.Meta != nil || fr.Body != nil {
				t.Fatalf("ReadFrame returned %+v, meta %d, body %d bytes with error %v; want header %+v only",
					fr.Header, len(fr.Meta), len(fr.Body), err, wantHdr)
			}
		}

		switch {
		case len(in) == 0:
			fail(io.EOF, 0, codec.Header{})
			return
		case len(in) < codec.HeaderLen:
			fail(io.ErrUnexpectedEOF, len(in), codec.Header{})
			return
		case in[0] != 'M' || in[1] != 'R':
			fail(codec.ErrBadMagic, codec.HeaderLen, codec.Header{})
			return
		}

		h := codec.Header{
			Version: in[2],
			Type:    codec.Type(in[3]),
			Seq:     uint32(in[4])<<24 | uint32(in[5])<<16 | uint32(in[6])<<8 | uint32(in[7]),
			MetaLen: uint32(in[8])<<24 | uint32(in[9])<<16 | uint32(in[10])<<8 | uint32(in[11]),
			BodyLen: uint32(in[12])<<24 | uint32(in[13])<<16 | uint32(in[14])<<8 | uint32(in[15]),
		}
		total := uint64(h.MetaLen) + uint64(h.BodyLen)
		switch {
		case h.Version != codec.Version:
			fail(codec.ErrBadVersion, codec.HeaderLen, h)
			return
		case h.Type != codec.TypeRequest:
			fail(codec.ErrBadType, codec.HeaderLen, h)
			return
		case h.MetaLen > codec.MaxMetaLen:
			fail(codec.ErrMetaTooLarge, codec.HeaderLen, h)
			return
		case total > fuzzMaxFrame:
			fail(codec.ErrFrameTooLarge, codec.HeaderLen, h)
			return
		case uint64(len(in)) < codec.HeaderLen+total:
			fail(io.ErrUnexpectedEOF, len(in), codec.Header{})
			return
		}

		// The model says the frame is whole and within the limits.
		if err != nil {
			t.Fatalf("ReadFrame refused a valid frame %+v: %v", h, err)
		}
		if fr.Header != h {
			t.Fatalf("ReadFrame header = %+v, want %+v", fr.Header, h)
		}
		if uint64(fr.MetaLen)+uint64(fr.BodyLen) > fuzzMaxFrame {
			t.Fatalf("accepted frame over the limit: %+v", fr.Header)
		}
		if len(fr.Meta) != int(fr.MetaLen) || len(fr.Body) != int(fr.BodyLen) {
			t.Fatalf("meta, body are %d, %d bytes; the header says %d, %d", len(fr.Meta), len(fr.Body), fr.MetaLen, fr.BodyLen)
		}
		if consumed != codec.HeaderLen+int(total) {
			t.Fatalf("ReadFrame consumed %d bytes, want %d", consumed, codec.HeaderLen+int(total))
		}
		re := header(fr.Header)
		re = append(re, fr.Meta...)
		re = append(re, fr.Body...)
		if !bytes.Equal(re, in[:consumed]) {
			t.Fatalf("re-encoded frame\n% x\ndiffers from the bytes read\n% x", re, in[:consumed])
		}
	})
}

// FuzzDecodeRequestMeta checks that whatever DecodeRequestMeta accepts
// re-encodes, decodes to an equal message, and re-encodes to the same bytes.
func FuzzDecodeRequestMeta(f *testing.F) {
	for _, m := range []*meta.RequestMeta{
		{},
		{Service: "myrpc.helloworld.Greeter", Method: "Hello", TimeoutMs: 1000},
		{Service: "myrpc.echo.Echo", Method: "Echo", Metadata: map[string]string{"k": "v", "trace-id": "abc"}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0A, 0x02, 0xC3, 0x28})
	f.Add([]byte{0x78, 0x01})

	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := codec.DecodeRequestMeta(in)
		if err != nil {
			if m != nil {
				t.Fatalf("DecodeRequestMeta returned %v with error %v", m, err)
			}
			return
		}
		checkReencode(t, m, func(b []byte) (proto.Message, error) { return codec.DecodeRequestMeta(b) })
	})
}

// FuzzDecodeResponseMeta is FuzzDecodeRequestMeta for response metas.
func FuzzDecodeResponseMeta(f *testing.F) {
	for _, m := range []*meta.ResponseMeta{
		{},
		{Code: 8, Message: "rpc: frame over the size limit"},
		{Code: 0, Metadata: map[string]string{"server": "v1-basic"}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x12, 0x01, 0xFF})
	f.Add([]byte{0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})

	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := codec.DecodeResponseMeta(in)
		if err != nil {
			if m != nil {
				t.Fatalf("DecodeResponseMeta returned %v with error %v", m, err)
			}
			return
		}
		checkReencode(t, m, func(b []byte) (proto.Message, error) { return codec.DecodeResponseMeta(b) })
	})
}

// checkReencode checks that m, a decoded meta, marshals, that decode reads
// the result back as an equal message, and that marshalling that gives the
// same bytes again.
func checkReencode(t *testing.T, m proto.Message, decode func([]byte) (proto.Message, error)) {
	t.Helper()
	opts := proto.MarshalOptions{Deterministic: true}
	b, err := opts.Marshal(m)
	if err != nil {
		t.Fatalf("a decoded meta does not marshal: %v", err)
	}
	if n := proto.Size(m); n != len(b) {
		t.Fatalf("proto.Size = %d, marshalled %d bytes", n, len(b))
	}
	m2, err := decode(b)
	if err != nil {
		t.Fatalf("decoding a re-encoded meta: %v", err)
	}
	if !proto.Equal(m, m2) {
		t.Fatalf("re-decoded meta %v differs from %v", m2, m)
	}
	b2, err := opts.Marshal(m2)
	if err != nil {
		t.Fatalf("marshal again: %v", err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("marshalling is not stable:\n% x\n% x", b, b2)
	}
}
