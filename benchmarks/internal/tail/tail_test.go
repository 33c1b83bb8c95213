package tail

import (
	"strings"
	"testing"
)

func TestBufferKeepsTheEnd(t *testing.T) {
	b := &Buffer{Max: 8}
	if got := b.String(); got != "(no output on stderr)" {
		t.Fatalf("empty: %q", got)
	}
	for _, s := range []string{"abc", "defgh", "ijklm"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "fghijklm" {
		t.Fatalf("kept %q, want the last 8 bytes", got)
	}
	b.Write([]byte(strings.Repeat(" ", 8)))
	if got := b.String(); got != "(no output on stderr)" {
		t.Fatalf("only spaces kept: %q", got)
	}
}
