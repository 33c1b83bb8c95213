package server

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/services"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/codec"
)

// TestRegisterErrors: Register returns its mistakes as errors and leaves
// the routing table as it was.
func TestRegisterErrors(t *testing.T) {
	tests := []struct {
		name string
		desc *rpc.ServiceDesc
		impl any
		// want is a part of the error's text; "" means success.
		want string
	}{
		{"nil implementation", &helloworld.Greeter_ServiceDesc, nil, "nil implementation"},
		{"wrong type", &helloworld.Greeter_ServiceDesc, struct{}{}, "does not implement"},
		{"Echo for Greeter", &helloworld.Greeter_ServiceDesc, services.Echo{}, "does not implement"},
		{"duplicate", &echo.Echo_ServiceDesc, services.Echo{}, "already registered"},
		{"no handler type takes anything", &rpc.ServiceDesc{ServiceName: "test.Any"}, 42, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(WithLogger(quietLogger()))
			if err := s.Register(&echo.Echo_ServiceDesc, services.Echo{}); err != nil {
				t.Fatal(err)
			}
			before := *s.services.Load()
			err := s.Register(tt.desc, tt.impl)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Register: %v", err)
				}
				if (*s.services.Load())[tt.desc.ServiceName] == nil {
					t.Fatal("the service is not in the table")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Register = %v, want an error containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.desc.ServiceName) {
				t.Fatalf("error %q does not name the service", err)
			}
			after := *s.services.Load()
			if len(after) != len(before) || after[tt.desc.ServiceName] != before[tt.desc.ServiceName] {
				t.Fatalf("a failed Register changed the table: %v -> %v", before, after)
			}
		})
	}
}

// TestRegisterCopiesTable: a table loaded before Register is not changed
// by it, so lookups need no lock.
func TestRegisterCopiesTable(t *testing.T) {
	s := New(WithLogger(quietLogger()))
	old := s.services.Load()
	if err := s.Register(&helloworld.Greeter_ServiceDesc, services.Greeter{}); err != nil {
		t.Fatal(err)
	}
	if len(*old) != 0 {
		t.Fatalf("Register wrote into the table a reader held: %v", *old)
	}
	if len(*s.services.Load()) != 1 {
		t.Fatal("the new table lacks the service")
	}
}

func TestLookup(t *testing.T) {
	s := New(WithLogger(quietLogger()))
	if err := s.Register(&helloworld.Greeter_ServiceDesc, services.Greeter{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(&echo.Echo_ServiceDesc, services.Echo{}); err != nil {
		t.Fatal(err)
	}
	const greeter, echoName = "myrpc.helloworld.Greeter", "myrpc.echo.Echo"
	tests := []struct {
		name            string
		only            map[string]bool
		service, method string
		// named is what an Unimplemented message must quote; "" means
		// the lookup succeeds.
		named string
	}{
		{"every service", nil, greeter, "Hello", ""},
		{"in the set", map[string]bool{greeter: true}, greeter, "Hello", ""},
		{"other listener", map[string]bool{echoName: true}, greeter, "Hello", greeter},
		{"empty set", map[string]bool{}, echoName, "Echo", echoName},
		{"set names an unregistered service", map[string]bool{"test.Nope": true}, "test.Nope", "Hello", "test.Nope"},
		{"unknown service", nil, "test.Nope", "Hello", "test.Nope"},
		{"unknown method", nil, greeter, "Goodbye", "Goodbye"},
		{"method of another service", map[string]bool{greeter: true, echoName: true}, greeter, "Echo", "Echo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, md, err := s.lookup(tt.only, tt.service, tt.method)
			if tt.named == "" {
				if err != nil {
					t.Fatalf("lookup: %v", err)
				}
				if svc.name != tt.service || md.MethodName != tt.method {
					t.Fatalf("found %s/%s, want %s/%s", svc.name, md.MethodName, tt.service, tt.method)
				}
				return
			}
			if svc != nil || md != nil {
				t.Fatal("a failed lookup returned a method")
			}
			se, _ := status.FromError(err)
			if se.Code() != codes.Unimplemented {
				t.Fatalf("lookup = %v, want Unimplemented", err)
			}
			if !strings.Contains(se.Message(), strconv.Quote(tt.named)) {
				t.Fatalf("message %q does not name %q", se.Message(), tt.named)
			}
		})
	}
}

// TestQuoteName: an error quotes a short name whole, and cuts a long one
// at a character boundary, saying how long it was.
func TestQuoteName(t *testing.T) {
	long := strings.Repeat("x", maxQuotedName+1)
	// A two-byte character that straddles the cut.
	straddle := strings.Repeat("x", maxQuotedName-1) + "é" + "tail"
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"short", "myrpc.echo.Echo", `"myrpc.echo.Echo"`},
		{"at the bound", long[1:], strconv.Quote(long[1:])},
		{"over the bound", long, fmt.Sprintf("%q... (%d bytes)", long[:maxQuotedName], len(long))},
		{"cut before a character", straddle, fmt.Sprintf("%q... (%d bytes)", straddle[:maxQuotedName-1], len(straddle))},
		{"invalid UTF-8", "a\xffb", `"a\xffb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quoteName(tt.in); got != tt.want {
				t.Fatalf("quoteName(%d bytes) = %q, want %q", len(tt.in), got, tt.want)
			}
		})
	}
}

// TestUnknownLongName: a request whose unknown service or method name
// nearly fills the 64 KiB meta is answered code 12, with the name cut short
// in the message. Quoted whole, the name would push the response meta over
// its limit, and the answer would become a code 8 and a warning.
func TestUnknownLongName(t *testing.T) {
	long := strings.Repeat("x", codec.MaxMetaLen-64)
	log, logs := newLogger()
	ts := startServer(t, WithLogger(log))
	tests := []struct {
		name, service, method string
	}{
		{"service", long, "Hello"},
		{"method", "myrpc.helloworld.Greeter", long},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := dial(t, ts.addr)
			if _, err := nc.Write(requestFrame(t, 1, tt.service, tt.method, &echo.EchoRequest{})); err != nil {
				t.Fatal(err)
			}
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			f, err := codec.ReadFrame(nc, codec.TypeResponse, codec.DefaultMaxFrameSize)
			if err != nil {
				t.Fatalf("reading the response: %v", err)
			}
			rm, err := codec.DecodeResponseMeta(f.Meta)
			if err != nil {
				t.Fatal(err)
			}
			if codes.Code(rm.Code) != codes.Unimplemented {
				t.Fatalf("response code %d %.100q..., want %d (Unimplemented)", rm.Code, rm.Message, codes.Unimplemented)
			}
			if len(rm.Message) > 1024 || !utf8.ValidString(rm.Message) ||
				!strings.Contains(rm.Message, fmt.Sprintf("(%d bytes)", len(long))) {
				t.Fatalf("message of %d bytes %.100q... does not cut the name short and give its length", len(rm.Message), rm.Message)
			}
		})
	}
	if n := logs.count(t, "WARN", "rpc: cannot encode response"); n != 0 {
		t.Fatalf("%d warnings logged for the unknown names", n)
	}
}
