package impls

import (
	"encoding/binary"
	"testing"
)

// FuzzParseRawHeader checks the raw implementations' header parser on any
// 16 bytes: it accepts only the right magic, version and type, never
// reports more than the frame limit, and what it accepts reads back the
// fields that were written.
func FuzzParseRawHeader(f *testing.F) {
	f.Add(appendRawFrame(nil, 1, make([]byte, 64))[:rawHeaderLen], byte(rawRequest))
	f.Add([]byte("GET / HTTP/1.1\r\n"), byte(rawRequest))
	f.Add([]byte{0x4d, 0x52, 1, 2, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, byte(rawResponse))
	f.Fuzz(func(t *testing.T, h []byte, typ byte) {
		if len(h) < rawHeaderLen {
			return
		}
		h = h[:rawHeaderLen]
		seq, n, err := parseRawHeader(h, typ)
		valid := binary.BigEndian.Uint16(h[0:2]) == rawMagic && h[2] == rawVersion && h[3] == typ
		total := uint64(binary.BigEndian.Uint32(h[8:12])) + uint64(binary.BigEndian.Uint32(h[12:16]))
		if want := valid && total <= rawMaxFrame; (err == nil) != want {
			t.Fatalf("header % x type %d: err %v, want accepted %v", h, typ, err, want)
		}
		if err != nil {
			return
		}
		if seq != binary.BigEndian.Uint32(h[4:8]) || uint64(n) != total {
			t.Fatalf("header % x: seq %d, n %d", h, seq, n)
		}
	})
}
