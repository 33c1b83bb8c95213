package config_test

import (
	"fmt"
	"os"
	"reflect"
	"testing"

	"myrpc/v5-cluster/config"
)

// FuzzParse feeds arbitrary bytes to Parse as rpc.yaml. Parse must not
// panic, and answers with a configuration that Validate accepts or with an
// error, never both and never neither; the same bytes always get the same
// answer.
func FuzzParse(f *testing.F) {
	repo, err := os.ReadFile("../rpc.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(repo)
	f.Add([]byte(full))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse(%q) = %+v, %v; want a configuration or an error", data, c, err)
		}
		c2, err2 := config.Parse(data)
		if !reflect.DeepEqual(c, c2) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("Parse(%q) answered %+v, %v, then %+v, %v", data, c, err, c2, err2)
		}
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse(%q) returned a configuration that Validate refuses: %v", data, err)
		}
	})
}
