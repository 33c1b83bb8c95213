// Package cpuprof reads a CPU profile into what the docs show of it: the
// functions that took the most CPU (Summary), the same time grouped into a
// few kinds of work (Category), and a flame graph (WriteFlame). make
// profile writes them beside the raw profiles in
// benchmarks/results/profile/vN/, and the report's profile regions read
// them from there.
package cpuprof

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// Func is one function's share of the profile's CPU time, in percent:
// Flat while it was the function running, Cum while it was on the stack.
type Func struct {
	Name string  `json:"name"`
	Flat float64 `json:"flat_pct"`
	Cum  float64 `json:"cum_pct"`
}

// Share is one category's share of the profile's CPU time, in percent.
type Share struct {
	Category string  `json:"category"`
	Pct      float64 `json:"pct"`
}

// Summary is what the docs show of one profile.
type Summary struct {
	// Samples is the number of samples; CPUSeconds the CPU time they
	// stand for; WallSeconds how long the profile ran.
	Samples     int64   `json:"samples"`
	CPUSeconds  float64 `json:"cpu_s"`
	WallSeconds float64 `json:"wall_s"`
	// Top are the functions with the most flat time, most first.
	Top []Func `json:"top"`
	// Categories are every category with any time, most first.
	Categories []Share `json:"categories"`
}

// cpuIndex returns the index of the sample value that counts CPU time.
func cpuIndex(p *profile.Profile) (int, error) {
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			return i, nil
		}
	}
	return 0, errors.New("not a CPU profile: no sample value of type cpu")
}

// stack returns the names of a sample's frames, the leaf first, with the
// inlined calls of each location in their places.
func stack(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function != nil {
				out = append(out, l.Function.Name)
			}
		}
		if len(loc.Line) == 0 {
			out = append(out, fmt.Sprintf("0x%x", loc.Address))
		}
	}
	return out
}

// Summarize returns the top n functions of p by flat time, with their
// cumulative time, and the time of each category.
func Summarize(p *profile.Profile, n int) (Summary, error) {
	vi, err := cpuIndex(p)
	if err != nil {
		return Summary{}, err
	}
	var total int64
	flat := map[string]int64{}
	cum := map[string]int64{}
	cats := map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[vi]
		if v == 0 {
			continue
		}
		total += v
		st := stack(s)
		if len(st) == 0 {
			continue
		}
		flat[st[0]] += v
		seen := map[string]bool{}
		for _, f := range st {
			if !seen[f] {
				seen[f] = true
				cum[f] += v
			}
		}
		cats[Category(st)] += v
	}
	sum := Summary{Samples: samples(p), CPUSeconds: float64(total) / 1e9, WallSeconds: float64(p.DurationNanos) / 1e9}
	if total == 0 {
		return sum, nil
	}
	pct := func(v int64) float64 { return math.Round(1000*float64(v)/float64(total)) / 10 }
	names := make([]string, 0, len(flat))
	for name := range flat {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(flat[b], flat[a]), cmp.Compare(cum[b], cum[a]), strings.Compare(a, b))
	})
	for _, name := range names[:min(n, len(names))] {
		sum.Top = append(sum.Top, Func{Name: name, Flat: pct(flat[name]), Cum: pct(cum[name])})
	}
	for c, v := range cats {
		sum.Categories = append(sum.Categories, Share{Category: c, Pct: pct(v)})
	}
	slices.SortFunc(sum.Categories, func(a, b Share) int {
		return cmp.Or(cmp.Compare(cats[b.Category], cats[a.Category]), strings.Compare(a.Category, b.Category))
	})
	return sum, nil
}

// samples counts the samples of p: the sum of its sample value of type
// samples, or without one the number of its records.
func samples(p *profile.Profile) int64 {
	for i, st := range p.SampleType {
		if st.Type == "samples" {
			var n int64
			for _, s := range p.Sample {
				n += s.Value[i]
			}
			return n
		}
	}
	return int64(len(p.Sample))
}

// ReadFile parses the profile in path.
func ReadFile(path string) (*profile.Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// WriteJSON writes v to path as indented JSON.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ShortName drops a function's package path up to its last slash:
// myrpc/v3-async-mux/client.(*Conn).readLoop is client.(*Conn).readLoop.
func ShortName(name string) string {
	// The receiver's type may hold a dot or slash of its own only after
	// the package path, which ends at the last slash before the first
	// parenthesis.
	head := name
	if i := strings.IndexByte(name, '('); i >= 0 {
		head = name[:i]
	}
	if i := strings.LastIndexByte(head, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}
