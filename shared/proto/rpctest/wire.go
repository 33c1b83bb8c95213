package rpctest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/meta"
)

// The suite's own encoding of the wire protocol (DESIGN §3), kept apart from
// every stage's codec so that it checks them rather than agrees with them.
const (
	headerLen    = 16
	magic        = 0x4D52
	version      = 1
	typeRequest  = 1
	typeResponse = 2
)

// header is a frame header with every field settable, the wrong ones
// included.
type header struct {
	magic   uint16
	version uint8
	typ     uint8
	seq     uint32
	metaLen uint32
	bodyLen uint32
}

func (h header) bytes() []byte {
	b := make([]byte, headerLen)
	binary.BigEndian.PutUint16(b[0:], h.magic)
	b[2] = h.version
	b[3] = h.typ
	binary.BigEndian.PutUint32(b[4:], h.seq)
	binary.BigEndian.PutUint32(b[8:], h.metaLen)
	binary.BigEndian.PutUint32(b[12:], h.bodyLen)
	return b
}

// rawRequest encodes a well-formed request frame with raw meta and body
// bytes.
func rawRequest(seq uint32, metaBytes, body []byte) []byte {
	h := header{magic: magic, version: version, typ: typeRequest, seq: seq,
		metaLen: uint32(len(metaBytes)), bodyLen: uint32(len(body))}
	out := h.bytes()
	out = append(out, metaBytes...)
	return append(out, body...)
}

// request encodes a request frame for service/method with a message body.
func request(t testing.TB, seq uint32, service, method string, timeoutMs uint32, body proto.Message) []byte {
	t.Helper()
	m, err := proto.Marshal(&meta.RequestMeta{Service: service, Method: method, TimeoutMs: timeoutMs})
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return rawRequest(seq, m, b)
}

// response is a decoded response frame.
type response struct {
	seq  uint32
	meta *meta.ResponseMeta
	body []byte
}

// readResponse reads one response frame, checking the header as a client
// must.
func readResponse(r io.Reader) (response, error) {
	b := make([]byte, headerLen)
	if _, err := io.ReadFull(r, b); err != nil {
		return response{}, err
	}
	if m := binary.BigEndian.Uint16(b); m != magic || b[2] != version || b[3] != typeResponse {
		return response{}, fmt.Errorf("bad response header % x", b)
	}
	metaLen := binary.BigEndian.Uint32(b[8:])
	bodyLen := binary.BigEndian.Uint32(b[12:])
	if uint64(metaLen)+uint64(bodyLen) > 64<<20 {
		return response{}, fmt.Errorf("response of %d bytes", uint64(metaLen)+uint64(bodyLen))
	}
	payload := make([]byte, int(metaLen)+int(bodyLen))
	if _, err := io.ReadFull(r, payload); err != nil {
		return response{}, err
	}
	rm := new(meta.ResponseMeta)
	if err := proto.Unmarshal(payload[:metaLen], rm); err != nil {
		return response{}, fmt.Errorf("response meta: %w", err)
	}
	return response{seq: binary.BigEndian.Uint32(b[4:]), meta: rm, body: payload[metaLen:]}, nil
}

// rawConn is a test's own connection to a server.
type rawConn struct {
	t testing.TB
	*net.TCPConn
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, TCPConn: c.(*net.TCPConn)}
}

func (c *rawConn) send(b []byte) {
	c.t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads one response within d.
func (c *rawConn) recv(d time.Duration) (response, error) {
	c.SetReadDeadline(time.Now().Add(d))
	return readResponse(c)
}

// expectClosed waits up to d for the server to close the connection, and
// returns how long that took. Reading EOF or a reset both count as closed;
// any data does not.
func (c *rawConn) expectClosed(d time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			c.t.Fatalf("expected the connection to close, read % x", buf[:n])
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatalf("the server did not close the connection within %v", d)
			}
			return time.Since(start)
		}
	}
}
