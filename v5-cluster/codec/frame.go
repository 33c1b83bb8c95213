package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"google.golang.org/protobuf/proto"
)

// Protocol constants.
const (
	// HeaderLen is the size of a frame header in bytes.
	HeaderLen = 16
	// Magic is the first two bytes of every frame: "MR".
	Magic uint16 = 0x4D52
	// Version is the protocol version this package speaks.
	Version uint8 = 1
	// MaxMetaLen is the largest meta a frame may carry: 64 KiB.
	MaxMetaLen = 64 << 10
	// DefaultMaxFrameSize is the default limit on meta + body: 4 MiB.
	DefaultMaxFrameSize = 4 << 20
)

// Type says whether a frame is a request or a response.
type Type uint8

// The frame types.
const (
	TypeRequest  Type = 1
	TypeResponse Type = 2
)

// Errors a reader returns for a header it refuses. The server answers
// ErrFrameTooLarge and ErrMetaTooLarge with code 8, ErrBadVersion and
// ErrBadType with a refusal, and closes the connection after each;
// ErrBadMagic gets no answer at all.
var (
	ErrBadMagic      = errors.New("rpc: frame does not start with magic 0x4D52")
	ErrBadVersion    = errors.New("rpc: unsupported protocol version")
	ErrBadType       = errors.New("rpc: unexpected frame type")
	ErrMetaTooLarge  = errors.New("rpc: frame meta over the 64 KiB limit")
	ErrFrameTooLarge = errors.New("rpc: frame over the size limit")
)

// Header is a decoded frame header. The magic is not kept: a header with
// the wrong magic never decodes.
type Header struct {
	Version uint8
	Type    Type
	Seq     uint32
	MetaLen uint32
	BodyLen uint32
}

// Frame is a whole frame: its header, and the meta and body bytes.
type Frame struct {
	Header
	Meta []byte
	Body []byte
}

// DecodeHeader decodes the first HeaderLen bytes of b. It fails only on the
// wrong magic; Check judges the rest.
func DecodeHeader(b []byte) (Header, error) {
	_ = b[HeaderLen-1]
	if binary.BigEndian.Uint16(b[0:2]) != Magic {
		return Header{}, ErrBadMagic
	}
	return Header{
		Version: b[2],
		Type:    Type(b[3]),
		Seq:     binary.BigEndian.Uint32(b[4:8]),
		MetaLen: binary.BigEndian.Uint32(b[8:12]),
		BodyLen: binary.BigEndian.Uint32(b[12:16]),
	}, nil
}

// PutHeader encodes h, with the magic, into the first HeaderLen bytes of b.
func PutHeader(b []byte, h Header) {
	_ = b[HeaderLen-1]
	binary.BigEndian.PutUint16(b[0:2], Magic)
	b[2] = h.Version
	b[3] = byte(h.Type)
	binary.BigEndian.PutUint32(b[4:8], h.Seq)
	binary.BigEndian.PutUint32(b[8:12], h.MetaLen)
	binary.BigEndian.PutUint32(b[12:16], h.BodyLen)
}

// Check reports whether a frame with header h may be read: the version is
// ours, the type is want, the meta is at most MaxMetaLen and meta + body at
// most maxFrame bytes. The sum is taken in 64 bits, so lengths near 4 GiB
// cannot wrap around.
func (h Header) Check(want Type, maxFrame int) error {
	if h.Version != Version {
		return fmt.Errorf("%w %d (this side speaks %d)", ErrBadVersion, h.Version, Version)
	}
	if h.Type != want {
		return fmt.Errorf("%w %d (want %d)", ErrBadType, h.Type, want)
	}
	return CheckSize(uint64(h.MetaLen), uint64(h.BodyLen), maxFrame)
}

// CheckSize reports whether meta and body lengths fit the limits. A
// negative maxFrame refuses every frame.
func CheckSize(metaLen, bodyLen uint64, maxFrame int) error {
	if metaLen > MaxMetaLen {
		return fmt.Errorf("%w: meta is %d bytes", ErrMetaTooLarge, metaLen)
	}
	// metaLen is at most 64 KiB here, so once bodyLen is within the limit
	// the sum cannot wrap.
	if maxFrame < 0 || bodyLen > uint64(maxFrame) || metaLen+bodyLen > uint64(maxFrame) {
		return fmt.Errorf("%w: meta + body is %d + %d bytes, the limit is %d", ErrFrameTooLarge, metaLen, bodyLen, maxFrame)
	}
	return nil
}

// ReadHeader reads and decodes one header from r. At a clean end of stream
// it returns io.EOF; a stream that ends inside the header gives
// io.ErrUnexpectedEOF.
func ReadHeader(r io.Reader) (Header, error) {
	var b [HeaderLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Header{}, err
	}
	return DecodeHeader(b[:])
}

// firstPayloadRead is the most ReadPayload allocates before a frame's
// bytes arrive: a frame this size or smaller is read with one allocation.
const firstPayloadRead = 64 << 10

// ReadPayload reads the meta and body that follow h. Its buffer grows with
// the bytes that arrive, not with the lengths the header promises: it
// starts at up to 64 KiB and doubles, up to h.MetaLen + h.BodyLen, so a
// header followed by nothing costs little. Call it only after h.Check has
// passed.
func ReadPayload(r io.Reader, h Header) (meta, body []byte, err error) {
	size := int(h.MetaLen) + int(h.BodyLen)
	buf := make([]byte, min(size, firstPayloadRead))
	for n := 0; ; {
		m, err := io.ReadFull(r, buf[n:])
		n += m
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, err
		}
		if n == size {
			return buf[:h.MetaLen:h.MetaLen], buf[h.MetaLen:], nil
		}
		grown := make([]byte, min(2*n, size))
		copy(grown, buf)
		buf = grown
	}
}

// ReadFrame reads one whole frame of type want from r, refusing any frame
// over the limits before it allocates. On a refused header the returned
// frame still holds that header, so a server can answer with its sequence
// id.
func ReadFrame(r io.Reader, want Type, maxFrame int) (Frame, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return Frame{}, err
	}
	if err := h.Check(want, maxFrame); err != nil {
		return Frame{Header: h}, err
	}
	meta, body, err := ReadPayload(r, h)
	if err != nil {
		return Frame{}, err
	}
	return Frame{Header: h, Meta: meta, Body: body}, nil
}

// AppendFrame appends a whole frame to dst: a header with typ and seq, then
// meta and body marshalled in place, so the frame is built in one buffer and
// can leave in one write. body may be nil, for an error response. It fails
// if the frame would break the limits.
func AppendFrame(dst []byte, typ Type, seq uint32, meta, body proto.Message, maxFrame int) ([]byte, error) {
	metaLen := proto.Size(meta)
	bodyLen := 0
	if body != nil {
		bodyLen = proto.Size(body)
	}
	if err := CheckSize(uint64(metaLen), uint64(bodyLen), maxFrame); err != nil {
		return dst, err
	}
	start := len(dst)
	// One allocation at most: room for the whole frame, then the header's
	// 16 bytes, filled in last.
	dst = slices.Grow(dst, HeaderLen+metaLen+bodyLen)
	dst = append(dst, make([]byte, HeaderLen)...)
	// proto.Size above cached the sizes, so marshalling need not walk the
	// messages twice.
	opts := proto.MarshalOptions{UseCachedSize: true}
	var err error
	if dst, err = opts.MarshalAppend(dst, meta); err != nil {
		return dst[:start], fmt.Errorf("rpc: marshal meta: %w", err)
	}
	if body != nil {
		if dst, err = opts.MarshalAppend(dst, body); err != nil {
			return dst[:start], fmt.Errorf("rpc: marshal body: %w", err)
		}
	}
	PutHeader(dst[start:], Header{
		Version: Version,
		Type:    typ,
		Seq:     seq,
		MetaLen: uint32(metaLen),
		BodyLen: uint32(bodyLen),
	})
	return dst, nil
}
