// Package configtest helps a package's tests check that the values the
// stage's rpc.yaml shows are that package's defaults, as the file says.
package configtest

import (
	"os"
	"slices"
	"strings"
	"testing"

	"myrpc/v5-cluster/config"
)

// Shown checks the settings that the rpc.yaml at path shows under prefix,
// but those that start with one in skip: each must be in want, which maps
// it to the value the file shows and the package's default, and the two
// must be equal. A setting the file shows and want lacks fails too, so
// that a new one cannot go unchecked.
func Shown(t testing.TB, path, prefix string, skip []string, want map[string][2]any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := config.Keys(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || slices.ContainsFunc(skip, func(p string) bool { return strings.HasPrefix(k, p) }) {
			continue
		}
		v, ok := want[k]
		if !ok {
			t.Errorf("%s shows %s, which this test does not check: add it", path, k)
			continue
		}
		if v[0] != v[1] {
			t.Errorf("%s shows %s: %v, but the default is %v", path, k, v[0], v[1])
		}
	}
}
