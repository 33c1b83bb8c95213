package runner

import (
	"fmt"
	"regexp"
	"sort"
)

// maxDistinctErrors bounds the distinct messages an errorCounts keeps;
// further ones are counted together.
const maxDistinctErrors = 8

// otherErrors stands for the messages past maxDistinctErrors.
const otherErrors = "(other errors)"

// localPort matches the local port of a connection in an error message, so
// that the same error on different connections reads the same.
var localPort = regexp.MustCompile(`:\d+->`)

// errorCounts counts errors by message. It is not safe for concurrent use.
type errorCounts map[string]uint64

func (e errorCounts) add(err error) {
	msg := localPort.ReplaceAllString(err.Error(), ":*->")
	if _, ok := e[msg]; !ok && len(e) >= maxDistinctErrors {
		msg = otherErrors
	}
	e[msg]++
}

func (e errorCounts) merge(o errorCounts) {
	for msg, n := range o {
		if _, ok := e[msg]; !ok && len(e) >= maxDistinctErrors {
			msg = otherErrors
		}
		e[msg] += n
	}
}

// samples returns up to n messages, most frequent first, each with its
// count: "12× dial tcp ...".
func (e errorCounts) samples(n int) []string {
	type kv struct {
		msg string
		n   uint64
	}
	var all []kv
	for m, c := range e {
		all = append(all, kv{m, c})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].msg < all[j].msg
	})
	var out []string
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, fmt.Sprintf("%d× %s", all[i].n, all[i].msg))
	}
	return out
}
