package codec

import "encoding/binary"

// CutFrame looks for a whole frame of type want at the start of b, the
// way a reactor reads: from a buffer that holds whatever has arrived. It
// returns the frame and its length n when b holds all of it; the frame's
// meta and body alias b. When b holds only part of a frame, n is 0 and need
// is the size of the whole frame, or HeaderLen while the header itself is
// incomplete, so that the caller knows how much room to make. The header is
// checked against the limits as soon as it is whole, before anything is
// allocated for the rest; a refused header comes back, with its sequence
// id, beside the error.
func CutFrame(b []byte, want Type, maxFrame int) (f Frame, n, need int, err error) {
	if len(b) < HeaderLen {
		if len(b) >= 2 && binary.BigEndian.Uint16(b) != Magic {
			return Frame{}, 0, 0, ErrBadMagic
		}
		return Frame{}, 0, HeaderLen, nil
	}
	h, err := DecodeHeader(b)
	if err != nil {
		return Frame{}, 0, 0, err
	}
	if err := h.Check(want, maxFrame); err != nil {
		return Frame{Header: h}, 0, 0, err
	}
	total := HeaderLen + int(h.MetaLen) + int(h.BodyLen)
	if len(b) < total {
		return Frame{}, 0, total, nil
	}
	metaEnd := HeaderLen + int(h.MetaLen)
	return Frame{Header: h, Meta: b[HeaderLen:metaEnd:metaEnd], Body: b[metaEnd:total:total]}, total, total, nil
}
