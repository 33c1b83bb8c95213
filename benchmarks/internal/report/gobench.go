package report

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// GoBench is the output of go test -bench, as make bench-ring commits it:
// configuration lines ("key: value", such as commit, date and load-before)
// and the results of each benchmark, in the order they first appear.
type GoBench struct {
	// Config holds the configuration lines, the last value of each key.
	Config map[string]string
	// Names are the benchmarks' names, without the Benchmark prefix and
	// the -GOMAXPROCS suffix: Queue/impl=mutex/producers=1.
	Names []string
	// Results holds, for each name and unit, the values of every run.
	Results map[string]map[string][]float64
}

// configRE is a configuration line: a lower-case key without spaces.
var configRE = regexp.MustCompile(`^([a-z][^\s:]*):\s*(.*)$`)

// procsRE is the -GOMAXPROCS suffix of a benchmark's name.
var procsRE = regexp.MustCompile(`-[0-9]+$`)

// ParseGoBench reads the output of go test -bench. Lines that are neither
// configuration nor results (PASS, ok …) are skipped.
func ParseGoBench(r io.Reader) (*GoBench, error) {
	g := &GoBench{Config: map[string]string{}, Results: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if m := configRE.FindStringSubmatch(text); m != nil {
			g.Config[m[1]] = strings.TrimSpace(m[2])
			continue
		}
		f := strings.Fields(text)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procsRE.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		units := g.Results[name]
		if units == nil {
			units = map[string][]float64{}
			g.Results[name] = units
			g.Names = append(g.Names, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %q is not a number", line, f[i])
			}
			units[f[i+1]] = append(units[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(g.Names) == 0 {
		return nil, fmt.Errorf("no benchmark results")
	}
	return g, nil
}

// stats are the median, least and greatest of values, and how many there
// are.
type stats struct {
	median, min, max float64
	n                int
}

func summarise(values []float64) stats {
	v := slices.Clone(values)
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return stats{}
	}
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return stats{median: med, min: v[0], max: v[n-1], n: n}
}

// gobenchTerm is the value of one term of an expression over a go test
// -bench run: a numeric configuration value (load-before), the runs of
// every benchmark (runs: the fewest), or NAME.FIELD where FIELD is median,
// min, max or runs of NAME's ns/op, such as Queue/impl=ring/producers=4.median.
func gobenchTerm(t string, g *GoBench) (float64, error) {
	if t == "runs" {
		n := 0
		for i, name := range g.Names {
			if c := len(g.Results[name]["ns/op"]); i == 0 || c < n {
				n = c
			}
		}
		return float64(n), nil
	}
	if v, ok := g.Config[t]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is %q, not a number", t, v)
		}
		return f, nil
	}
	i := strings.LastIndex(t, ".")
	if i < 0 {
		return 0, fmt.Errorf("%q is neither a number, a value of the run, nor a benchmark's field", t)
	}
	name, field := t[:i], t[i+1:]
	units, ok := g.Results[name]
	if !ok {
		return 0, fmt.Errorf("no benchmark %s in the results", name)
	}
	s := summarise(units["ns/op"])
	if s.n == 0 {
		return 0, fmt.Errorf("%s has no ns/op", name)
	}
	switch field {
	case "median":
		return s.median, nil
	case "min":
		return s.min, nil
	case "max":
		return s.max, nil
	case "runs":
		return float64(s.n), nil
	}
	return 0, fmt.Errorf("%s: no field %q (median, min, max, runs)", name, field)
}

// regionGoBench writes a table of a go test -bench run's ns/op: one line
// for each value of the key rows, one column for each value of the key
// cols, in the order they first appear; each cell the median and, in
// brackets, the least and greatest, in whole nanoseconds. Arguments: rows=KEY cols=KEY, and
// bench=NAME to keep only the benchmarks whose name starts with NAME/.
func regionGoBench(b *strings.Builder, g *GoBench, args string) error {
	var rowKey, colKey, bench string
	for _, a := range strings.Fields(args) {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("argument %q: want name=value", a)
		}
		switch k {
		case "rows":
			rowKey = v
		case "cols":
			colKey = v
		case "bench":
			bench = v
		default:
			return fmt.Errorf("unknown argument %q", k)
		}
	}
	if rowKey == "" || colKey == "" {
		return fmt.Errorf("want rows=KEY and cols=KEY")
	}
	var rowVals, colVals []string
	cells := map[[2]string]stats{}
	for _, name := range g.Names {
		parts := strings.Split(name, "/")
		if bench != "" && parts[0] != bench {
			continue
		}
		keys := map[string]string{}
		for _, p := range parts[1:] {
			if k, v, ok := strings.Cut(p, "="); ok {
				keys[k] = v
			}
		}
		rv, ok1 := keys[rowKey]
		cv, ok2 := keys[colKey]
		if !ok1 || !ok2 {
			return fmt.Errorf("benchmark %s names no %s and %s", name, rowKey, colKey)
		}
		if !slices.Contains(rowVals, rv) {
			rowVals = append(rowVals, rv)
		}
		if !slices.Contains(colVals, cv) {
			colVals = append(colVals, cv)
		}
		s := summarise(g.Results[name]["ns/op"])
		if s.n == 0 {
			return fmt.Errorf("%s has no ns/op", name)
		}
		cells[[2]string{rv, cv}] = s
	}
	if len(rowVals) == 0 {
		return fmt.Errorf("no benchmark %s in the results", bench)
	}
	writeHead(b, append([]string{rowKey}, colVals...))
	for _, rv := range rowVals {
		line := []string{rv}
		for _, cv := range colVals {
			s, ok := cells[[2]string{rv, cv}]
			if !ok {
				line = append(line, "—")
				continue
			}
			line = append(line, fmt.Sprintf("%.0f (%.0f–%.0f)", s.median, s.min, s.max))
		}
		b.WriteString("| " + strings.Join(line, " | ") + " |\n")
	}
	return nil
}
