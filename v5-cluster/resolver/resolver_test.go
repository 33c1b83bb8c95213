package resolver

import (
	"errors"
	"slices"
	"testing"
)

func TestStatic(t *testing.T) {
	var got [][]string
	c, err := Static("a:1", "b:2").Resolve("svc", func(addrs []string) { got = append(got, addrs) })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !slices.Equal(got[0], []string{"a:1", "b:2"}) {
		t.Fatalf("updates = %v, want one with both addresses", got)
	}
	if _, err := Static().Resolve("svc", func([]string) {}); !errors.Is(err, ErrNoAddrs) {
		t.Fatalf("Static() resolved with %v, want ErrNoAddrs", err)
	}
}
