package codec

import (
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
)

// TestProtocolDocBytes checks that the hex dumps in docs/protocol.md are
// what this codec produces, so that the page cannot drift from the code.
func TestProtocolDocBytes(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	frames := []struct {
		name string
		typ  Type
		seq  uint32
		meta proto.Message
		body proto.Message
	}{
		{"Hello request", TypeRequest, 1,
			&meta.RequestMeta{Service: "myrpc.helloworld.Greeter", Method: "Hello", TimeoutMs: 1000},
			&helloworld.HelloRequest{Msg: "world"}},
		{"Hello response", TypeResponse, 1, &meta.ResponseMeta{}, &helloworld.HelloReply{Msg: "Hello world"}},
		{"Unimplemented response", TypeResponse, 2,
			&meta.ResponseMeta{Code: 12, Message: `rpc: unknown method "Goodbye" of service "myrpc.helloworld.Greeter"`}, nil},
	}
	blocks := regexp.MustCompile("(?s)```\n(00000000  .*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) != len(frames) {
		t.Fatalf("docs/protocol.md has %d hex dumps, want %d", len(blocks), len(frames))
	}
	for i, f := range frames {
		b, err := AppendFrame(nil, f.typ, f.seq, f.meta, f.body, DefaultMaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(hex.Dump(b)), strings.TrimSpace(blocks[i][1]); got != want {
			t.Errorf("%s: docs/protocol.md shows\n%s\nthe codec produces\n%s", f.name, want, got)
		}
	}
}

// TestProtocolDocMeta checks that every field the page shows is declared in
// meta.proto as shown.
func TestProtocolDocMeta(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../shared/proto/meta/meta.proto")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```proto\n(.*?)```").FindStringSubmatch(string(doc))
	if block == nil {
		t.Fatal("docs/protocol.md shows no meta.proto excerpt")
	}
	for _, line := range strings.Split(block[1], "\n") {
		decl, _, _ := strings.Cut(line, "//")
		decl = strings.TrimSpace(decl)
		if decl == "" || decl == "}" {
			continue
		}
		if !strings.Contains(string(src), decl) {
			t.Errorf("docs/protocol.md shows %q, which meta.proto does not declare", decl)
		}
	}
}
