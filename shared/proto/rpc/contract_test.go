package rpc_test

import (
	"context"
	"maps"
	"testing"

	"myrpc/shared/proto/rpc"
)

func TestSplitMethod(t *testing.T) {
	tests := []struct {
		name        string
		full        string
		wantService string
		wantMethod  string
		wantOK      bool
	}{
		{name: "good", full: "/a.b.C/M", wantService: "a.b.C", wantMethod: "M", wantOK: true},
		{name: "generated constant", full: "/myrpc.helloworld.Greeter/Hello", wantService: "myrpc.helloworld.Greeter", wantMethod: "Hello", wantOK: true},
		// A .proto without a package gives a service name without dots.
		{name: "service without dots", full: "/Greeter/Hello", wantService: "Greeter", wantMethod: "Hello", wantOK: true},
		{name: "one-letter parts", full: "/S/M", wantService: "S", wantMethod: "M", wantOK: true},
		{name: "no leading slash", full: "a.b.C/M"},
		{name: "no method", full: "/a.b.C"},
		{name: "empty service", full: "//M"},
		{name: "trailing slash", full: "/a.b.C/"},
		{name: "method then trailing slash", full: "/a.b.C/M/"},
		{name: "only slashes", full: "//"},
		{name: "slash", full: "/"},
		{name: "empty", full: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			service, method, ok := rpc.SplitMethod(tt.full)
			if service != tt.wantService || method != tt.wantMethod || ok != tt.wantOK {
				t.Errorf("SplitMethod(%q) = %q, %q, %v; want %q, %q, %v",
					tt.full, service, method, ok, tt.wantService, tt.wantMethod, tt.wantOK)
			}
			// Whatever splits must join back to the same name.
			if ok && "/"+service+"/"+method != tt.full {
				t.Errorf("SplitMethod(%q) does not join back: %q, %q", tt.full, service, method)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	tests := []struct {
		name         string
		outgoing     rpc.Metadata
		incoming     rpc.Metadata
		wantOutgoing rpc.Metadata
		wantIncoming rpc.Metadata
	}{
		{name: "absent"},
		{
			name:         "outgoing only",
			outgoing:     rpc.Metadata{"trace-id": "abc", "user": "ann"},
			wantOutgoing: rpc.Metadata{"trace-id": "abc", "user": "ann"},
		},
		{
			name:         "incoming only",
			incoming:     rpc.Metadata{"trace-id": "def"},
			wantIncoming: rpc.Metadata{"trace-id": "def"},
		},
		{
			// A server that handles a call and makes another keeps the two
			// apart: incoming metadata is not sent on by itself.
			name:         "both",
			outgoing:     rpc.Metadata{"hop": "2"},
			incoming:     rpc.Metadata{"hop": "1"},
			wantOutgoing: rpc.Metadata{"hop": "2"},
			wantIncoming: rpc.Metadata{"hop": "1"},
		},
		{
			name:         "empty map",
			outgoing:     rpc.Metadata{},
			wantOutgoing: rpc.Metadata{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.outgoing != nil {
				ctx = rpc.WithOutgoingMetadata(ctx, tt.outgoing)
			}
			if tt.incoming != nil {
				ctx = rpc.WithIncomingMetadata(ctx, tt.incoming)
			}
			checkMD(t, "OutgoingMetadata", rpc.OutgoingMetadata(ctx), tt.wantOutgoing)
			checkMD(t, "IncomingMetadata", rpc.IncomingMetadata(ctx), tt.wantIncoming)
		})
	}
}

func checkMD(t *testing.T, what string, got, want rpc.Metadata) {
	t.Helper()
	if (got == nil) != (want == nil) || !maps.Equal(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestMetadataInnermostWins(t *testing.T) {
	ctx := rpc.WithOutgoingMetadata(context.Background(), rpc.Metadata{"k": "outer"})
	inner := rpc.WithOutgoingMetadata(ctx, rpc.Metadata{"k": "inner"})
	if got := rpc.OutgoingMetadata(inner)["k"]; got != "inner" {
		t.Errorf("inner context: k = %q, want inner", got)
	}
	if got := rpc.OutgoingMetadata(ctx)["k"]; got != "outer" {
		t.Errorf("outer context: k = %q, want outer", got)
	}
}
