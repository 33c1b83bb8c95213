package report

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"myrpc/benchmarks/internal/results"
)

// Regions: the benchmark numbers in README.md and the chapters are not typed
// by hand. Each sits in a marked region that Regions rewrites from the rows:
//
//	<!-- bench:EXPR [FORMAT] -->49.4k<!-- /bench -->
//	<!-- bench:table payload=64 callers=1,64 impls=v1,grpc cols=qps,x-grpc,p50 bold=v1 -->
//	| impl | callers | QPS | … (the table; rewritten)
//	<!-- /bench -->
//	<!-- bench:bursts impls=v1,grpc --> … <!-- /bench -->
//	<!-- bench:hols impls=v1,v3 --> … <!-- /bench -->
//	<!-- bench:for-commit 724a71ecf1fc -->prose about that run<!-- /bench -->
//	<!-- bench@gomaxprocs1:raw-pool/64/1.p50 us -->32<!-- /bench -->
//	<!-- bench@ring:gobench bench=Queue rows=producers cols=impl -->
//	| producers | mutex | … (the table; rewritten)
//	<!-- /bench -->
//
// Without @NAME a region is of benchmarks/results/latest/results.json, the
// run of make bench-all; with it, of the run committed in
// benchmarks/results/NAME/ (see Sets): a results.json, which the same
// regions read, or a bench.txt, the output of go test -bench, which gobench
// tables and expressions over its benchmarks read.
//
// A for-commit region is prose written about one run, such as what has
// changed in the code since: it is left as it is while the results are of
// that commit, and is an error once they are not, so that a new run makes
// someone revise it.
//
// An EXPR is terms joined by the operators * / + -, each a separate word,
// worked out from left to right. A term is a number, a value of the run
// (commit, reps, cores, gomaxprocs, burst: the burst's goroutines, wall:
// the whole run's seconds), or a row's field:
//
//	v2/64/1000.qps   the case row of impl v2, 64-byte payload, 1000 callers
//	burst/v1.window  the burst row of impl v1
//	hol/v3.p99       the head-of-line row of impl v3
//	cluster/v5/p2c.p99  the cluster row of impl v5 under p2c, in a closed
//	                 loop (round_robin, p2c, or kill: p2c with a server
//	                 killed)
//	cluster/v5/p2c/open.p99  its row at the offered rate (open loop)
//
// Fields: qps, qpsmin, qpsmax, p50, p99, p999 (µs), cpu (server CPU µs per
// call), fpw (frames per write), errors, calls, window (s), rss (MiB), for
// head-of-line rows callers, slow, conns and delay (ms), and for cluster
// rows callers, delay (ms), servers, slowserved (the calls the slow server
// answered), slowp99 (their p99, µs), fastcalls (those the others
// answered), fastp50 and fastp99 (their latencies, µs), and offered (calls
// a second, open loop).
//
// A FORMAT is k (one decimal: 49.4k, 1.23M), us (5,341; 7.5 below 10), x
// (a ratio: 1.67, 12.3), int (grouped digits: 20,000), word (three), code
// (the value as `code`), or a printf verb such as %.1f. Without one, %.2f;
// the commit is text, shown as is or as code.
//
// Over a bench.txt, a term is a number, a numeric configuration line of the
// file (load-before), runs (the fewest runs of any benchmark), or a
// benchmark's field: Queue/impl=ring/producers=4.median, with the fields
// median, min, max and runs of its ns/op. A gobench table has a line for
// each value of the key rows names in the benchmarks' names, a column for
// each value of cols, and in each cell the median ns/op and, in brackets,
// the least and greatest.
//
// The profiles of make profile have regions of their own: see profiles.go.

// regionRE finds a region: the name of its run, if any, its spec and its
// content.
var regionRE = regexp.MustCompile(`(?s)<!-- bench(@[a-z0-9-]+)?:(.*?) -->(.*?)<!-- /bench -->`)

// Set is one committed run: the rows of a results.json, or a bench.txt.
type Set struct {
	Rows  []results.Row
	Bench *GoBench

	// Profiles are the stages' profiles of make profile, by stage.
	Profiles map[string]StageProfile
}

// commit is the commit the run measured, "" if it names none.
func (s Set) commit() string {
	if s.Bench != nil {
		return s.Bench.Config["commit"]
	}
	if s.Profiles != nil {
		return profileCommit(s.Profiles)
	}
	return runRow(s.Rows).Machine.GitCommit
}

// Sets are the runs regions may name: "" is the run of
// benchmarks/results/latest, any other name the folder of that name beside
// it.
type Sets map[string]Set

// LoadSets reads the runs committed in dir (benchmarks/results): latest
// stands for results/latest, and each other folder that holds a
// results.json, a bench.txt, or folders of profiles (see StageProfile) is
// a run of the folder's name.
func LoadSets(dir string, latest []results.Row) (Sets, error) {
	sets := Sets{"": {Rows: latest}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "latest" {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		if rows, err := results.Load(filepath.Join(sub, "results.json")); err == nil {
			sets[e.Name()] = Set{Rows: rows}
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		f, err := os.Open(filepath.Join(sub, "bench.txt"))
		if errors.Is(err, fs.ErrNotExist) {
			ps, err := loadProfiles(sub)
			if err != nil {
				return nil, err
			}
			if ps != nil {
				sets[e.Name()] = Set{Profiles: ps}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		g, err := ParseGoBench(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(sub, "bench.txt"), err)
		}
		sets[e.Name()] = Set{Bench: g}
	}
	return sets, nil
}

// Rewrite returns doc with every benchmark region rewritten from rows, the
// run of results/latest.
func Rewrite(doc string, rows []results.Row) (string, error) {
	return RewriteSets(doc, Sets{"": {Rows: rows}})
}

// RewriteSets returns doc with every benchmark region rewritten from the
// run it names.
func RewriteSets(doc string, sets Sets) (string, error) {
	var firstErr error
	out := regionRE.ReplaceAllStringFunc(doc, func(m string) string {
		sub := regionRE.FindStringSubmatch(m)
		name, spec := strings.TrimPrefix(sub[1], "@"), strings.TrimSpace(sub[2])
		body, err := func() (string, error) {
			set, ok := sets[name]
			if !ok {
				return "", fmt.Errorf("no run %s in benchmarks/results", name)
			}
			return region(spec, sub[3], set)
		}()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("<!-- bench%s:%s -->: %w", sub[1], spec, err)
			}
			return m
		}
		return "<!-- bench" + sub[1] + ":" + sub[2] + " -->" + body + "<!-- /bench -->"
	})
	return out, firstErr
}

// region returns the new content of the region with spec and content
// old.
func region(spec, old string, set Set) (string, error) {
	kind, args, _ := strings.Cut(spec, " ")
	rows := set.Rows
	switch kind {
	case "for-commit":
		if c := set.commit(); c != strings.TrimSpace(args) {
			return "", fmt.Errorf("written about the run of commit %s, but the results are of commit %s: revise it", args, c)
		}
		return old, nil
	case "profiles":
		if set.Profiles == nil {
			return "", fmt.Errorf("a profiles region needs the run of make profile: bench@profile")
		}
		var b strings.Builder
		b.WriteString("\n")
		err := regionProfiles(&b, set.Profiles, args)
		return b.String(), err
	case "gobench":
		if set.Bench == nil {
			return "", fmt.Errorf("a gobench table needs a bench.txt")
		}
		var b strings.Builder
		b.WriteString("\n")
		err := regionGoBench(&b, set.Bench, args)
		return b.String(), err
	}
	if set.Bench != nil || set.Profiles != nil {
		return inline(spec, set)
	}
	switch kind {
	case "table", "bursts", "hols", "clusters":
		var opts tableOpts
		var err error
		if kind != "clusters" { // the cluster table takes no arguments
			if opts, err = tableArgs(args); err != nil {
				return "", err
			}
		}
		var b strings.Builder
		b.WriteString("\n")
		switch kind {
		case "table":
			err = regionTable(&b, rows, opts)
		case "bursts":
			err = regionBurst(&b, rows, opts)
		case "clusters":
			err = regionCluster(&b, rows)
		default:
			err = regionHOL(&b, rows, opts)
		}
		return b.String(), err
	}
	return inline(spec, set)
}

// inline works out an inline region's expression and formats it.
func inline(spec string, set Set) (string, error) {
	words := strings.Fields(spec)
	format := "%.2f"
	if n := len(words); n > 1 && n%2 == 0 {
		format, words = words[n-1], words[:n-1]
	}
	if len(words) == 1 && words[0] == "commit" {
		c := set.commit()
		if c == "" {
			return "", fmt.Errorf("the run names no commit")
		}
		if format == "code" {
			return "`" + c + "`", nil
		}
		return c, nil
	}
	v, err := term(words[0], set)
	if err != nil {
		return "", err
	}
	for i := 1; i+1 < len(words); i += 2 {
		w, err := term(words[i+1], set)
		if err != nil {
			return "", err
		}
		switch words[i] {
		case "*":
			v *= w
		case "/":
			if w == 0 {
				return "", fmt.Errorf("%s is 0", words[i+1])
			}
			v /= w
		case "+":
			v += w
		case "-":
			v -= w
		default:
			return "", fmt.Errorf("unknown operator %q", words[i])
		}
	}
	return formatValue(v, format)
}

// runRow is the row that describes the run: the first.
func runRow(rows []results.Row) results.Row {
	if len(rows) == 0 {
		return results.Row{}
	}
	return rows[0]
}

// term is the value of one term of an expression.
func term(t string, set Set) (float64, error) {
	if v, err := strconv.ParseFloat(t, 64); err == nil {
		return v, nil
	}
	if set.Bench != nil {
		return gobenchTerm(t, set.Bench)
	}
	if set.Profiles != nil {
		return profileTerm(t, set.Profiles)
	}
	rows := set.Rows
	r0 := runRow(rows)
	switch t {
	case "reps":
		return float64(r0.Flags.Reps), nil
	case "cores":
		return float64(r0.Machine.Cores), nil
	case "gomaxprocs":
		return float64(r0.Machine.GOMAXPROCS), nil
	case "burst":
		return float64(r0.Flags.Burst), nil
	case "wall":
		return r0.RunWallS, nil
	}
	ref, field, ok := strings.Cut(t, ".")
	if !ok {
		return 0, fmt.Errorf("%q is neither a number, a value of the run, nor a row's field", t)
	}
	r, err := findRow(ref, rows)
	if err != nil {
		return 0, err
	}
	f, ok := fields[field]
	if !ok {
		return 0, fmt.Errorf("%s: no field %q", ref, field)
	}
	if r.Failed {
		return 0, fmt.Errorf("%s failed: %s", ref, r.FailReason)
	}
	return f(r), nil
}

// fields are the fields a term may name.
var fields = map[string]func(results.Row) float64{
	"qps":        func(r results.Row) float64 { return r.QPS },
	"qpsmin":     func(r results.Row) float64 { return cmpOr(r.QPSMin, r.QPS) },
	"qpsmax":     func(r results.Row) float64 { return cmpOr(r.QPSMax, r.QPS) },
	"p50":        func(r results.Row) float64 { return r.P50US },
	"p99":        func(r results.Row) float64 { return r.P99US },
	"p999":       func(r results.Row) float64 { return r.P999US },
	"cpu":        func(r results.Row) float64 { return r.ServerCPUUSPerCall },
	"fpw":        func(r results.Row) float64 { return r.FramesPerWrite },
	"errors":     func(r results.Row) float64 { return float64(r.Errors) },
	"calls":      func(r results.Row) float64 { return float64(r.Calls) },
	"window":     func(r results.Row) float64 { return r.WindowS },
	"rss":        func(r results.Row) float64 { return float64(r.ServerRSSKiB) / 1024 },
	"callers":    func(r results.Row) float64 { return float64(r.Callers) },
	"slow":       func(r results.Row) float64 { return float64(r.SlowCallers) },
	"conns":      func(r results.Row) float64 { return float64(r.MaxConns) },
	"delay":      func(r results.Row) float64 { return r.SlowDelayMs },
	"servers":    func(r results.Row) float64 { return float64(r.Servers) },
	"slowserved": func(r results.Row) float64 { return float64(r.SlowServed) },
	"fastcalls":  func(r results.Row) float64 { return float64(r.Calls - r.SlowServed) },
	"fastp50":    func(r results.Row) float64 { return r.FastP50US },
	"fastp99":    func(r results.Row) float64 { return r.FastP99US },
	"slowp99":    func(r results.Row) float64 { return r.SlowP99US },
	"offered":    func(r results.Row) float64 { return r.OfferedQPS },
}

func cmpOr(v, otherwise float64) float64 {
	if v == 0 {
		return otherwise
	}
	return v
}

// findRow finds the row a reference names: impl/payload/callers,
// burst/impl, hol/impl, cluster/impl/policy or cluster/impl/policy/open.
func findRow(ref string, rows []results.Row) (results.Row, error) {
	parts := strings.Split(ref, "/")
	var want func(r results.Row) bool
	switch {
	case len(parts) == 2 && (parts[0] == "burst" || parts[0] == "hol"):
		kind := results.KindBurst
		if parts[0] == "hol" {
			kind = results.KindHOL
		}
		want = func(r results.Row) bool { return r.Kind == kind && r.Impl == parts[1] }
	case (len(parts) == 3 || len(parts) == 4 && parts[3] == "open") && parts[0] == "cluster":
		policy, killed, open := parts[2], 0, len(parts) == 4
		if policy == "kill" {
			policy, killed = "p2c", 1
		}
		want = func(r results.Row) bool {
			return r.Kind == results.KindCluster && r.Impl == parts[1] && r.Policy == policy && r.Killed == killed && (r.OfferedQPS > 0) == open
		}
	case len(parts) == 3:
		payload, err1 := strconv.Atoi(parts[1])
		callers, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil {
			return results.Row{}, fmt.Errorf("%q: want impl/payload/callers", ref)
		}
		want = func(r results.Row) bool {
			return r.Kind == results.KindCase && r.Impl == parts[0] && r.PayloadBytes == payload && r.Callers == callers
		}
	default:
		return results.Row{}, fmt.Errorf("%q: want impl/payload/callers, burst/impl, hol/impl, cluster/impl/policy or cluster/impl/policy/open", ref)
	}
	for _, r := range rows {
		if want(r) {
			return r, nil
		}
	}
	return results.Row{}, fmt.Errorf("no row %s in the results", ref)
}

// numberWords name the small whole numbers for the word format.
var numberWords = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"}

// formatValue formats v as format says.
func formatValue(v float64, format string) (string, error) {
	switch format {
	case "k":
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.2fM", v/1e6), nil
		case v >= 1e3:
			return fmt.Sprintf("%.1fk", v/1e3), nil
		default:
			return fmt.Sprintf("%.0f", v), nil
		}
	case "us":
		return fmtUS(v), nil
	case "x":
		return fmtRatio(v, true), nil
	case "int":
		return fmtInt(uint64(math.Round(max(v, 0)))), nil
	case "word":
		if n := int(math.Round(v)); n >= 0 && n < len(numberWords) {
			return numberWords[n], nil
		}
		return fmtInt(uint64(math.Round(max(v, 0)))), nil
	}
	if strings.HasPrefix(format, "%") {
		return fmt.Sprintf(format, v), nil
	}
	return "", fmt.Errorf("unknown format %q", format)
}

// tableOpts are the arguments of a table region.
type tableOpts struct {
	payload int
	callers []int
	impls   []string
	cols    []string
	bold    []string
}

// tableArgs parses name=value arguments.
func tableArgs(args string) (tableOpts, error) {
	o := tableOpts{payload: 64}
	for _, a := range strings.Fields(args) {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return o, fmt.Errorf("argument %q: want name=value", a)
		}
		list := strings.Split(v, ",")
		switch k {
		case "payload":
			n, err := strconv.Atoi(v)
			if err != nil {
				return o, fmt.Errorf("payload=%s: %w", v, err)
			}
			o.payload = n
		case "callers":
			for _, s := range list {
				n, err := strconv.Atoi(s)
				if err != nil {
					return o, fmt.Errorf("callers=%s: %w", v, err)
				}
				o.callers = append(o.callers, n)
			}
		case "impls":
			o.impls = list
		case "cols":
			o.cols = list
		case "bold":
			o.bold = list
		default:
			return o, fmt.Errorf("unknown argument %q", k)
		}
	}
	if len(o.impls) == 0 {
		return o, fmt.Errorf("no impls")
	}
	return o, nil
}

// implCell is an implementation's name, in bold if bold lists it.
func implCell(impl string, bold []string) string {
	if slices.Contains(bold, impl) {
		return "**" + impl + "**"
	}
	return impl
}

// columns of a table region: header, alignment-free value.
var columns = map[string]struct {
	head string
	val  func(rows []results.Row, r results.Row) string
}{
	"qps":    {"QPS", func(_ []results.Row, r results.Row) string { s, _ := formatValue(r.QPS, "k"); return s }},
	"p50":    {"p50 µs", func(_ []results.Row, r results.Row) string { return fmtUS(r.P50US) }},
	"p99":    {"p99 µs", func(_ []results.Row, r results.Row) string { return fmtUS(r.P99US) }},
	"p999":   {"p999 µs", func(_ []results.Row, r results.Row) string { return fmtUS(r.P999US) }},
	"cpu":    {"server CPU µs/call", func(_ []results.Row, r results.Row) string { return fmt.Sprintf("%.1f", r.ServerCPUUSPerCall) }},
	"errors": {"errors", func(_ []results.Row, r results.Row) string { return fmtInt(r.Errors) }},
	"fpw": {"frames/write", func(_ []results.Row, r results.Row) string {
		if r.FramesPerWrite <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f", r.FramesPerWrite)
	}},
}

// column returns the header and the cell function of col; x-BASE is the
// ratio of QPS to BASE's.
func column(col string) (string, func([]results.Row, results.Row) string, error) {
	if base, ok := strings.CutPrefix(col, "x-"); ok {
		return "× " + base, func(rows []results.Row, r results.Row) string {
			return fmtRatio(Ratio(rows, r, base))
		}, nil
	}
	c, ok := columns[col]
	if !ok {
		return "", nil, fmt.Errorf("unknown column %q", col)
	}
	return c.head, c.val, nil
}

// regionTable writes a table of case rows: for each callers, the impls in
// the order given.
func regionTable(b *strings.Builder, rows []results.Row, o tableOpts) error {
	heads := []string{"impl", "callers"}
	var cells []func([]results.Row, results.Row) string
	for _, c := range o.cols {
		h, f, err := column(c)
		if err != nil {
			return err
		}
		heads = append(heads, h)
		cells = append(cells, f)
	}
	writeHead(b, heads)
	for _, n := range o.callers {
		for _, impl := range o.impls {
			r, err := findRow(fmt.Sprintf("%s/%d/%d", impl, o.payload, n), rows)
			if err != nil {
				return err
			}
			if r.Failed {
				return fmt.Errorf("%s/%d/%d failed: %s", impl, o.payload, n, r.FailReason)
			}
			line := []string{implCell(impl, o.bold), strconv.Itoa(n)}
			for _, f := range cells {
				line = append(line, f(rows, r))
			}
			b.WriteString("| " + strings.Join(line, " | ") + " |\n")
		}
	}
	return nil
}

// writeHead writes a table's header: the first column left-aligned, the
// others right.
func writeHead(b *strings.Builder, heads []string) {
	b.WriteString("| " + strings.Join(heads, " | ") + " |\n| --- |")
	for range heads[1:] {
		b.WriteString(" ---: |")
	}
	b.WriteString("\n")
}

// regionBurst writes the burst rows of impls.
func regionBurst(b *strings.Builder, rows []results.Row, o tableOpts) error {
	n, _ := formatValue(float64(runRow(rows).Flags.Burst), "int")
	writeHead(b, []string{"impl", "ok of " + n, "all done in", "p99 ms", "server RSS MiB"})
	for _, impl := range o.impls {
		r, err := findRow("burst/"+impl, rows)
		if err != nil {
			return err
		}
		if r.Failed {
			// A burst whose measures could not be taken (the harness out of
			// files, say) shows what it has: the calls that succeeded.
			fmt.Fprintf(b, "| %s | %s | failed | — | — |\n", implCell(impl, o.bold), fmtInt(r.Calls))
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %.2f s | %s | %.0f |\n", implCell(impl, o.bold), fmtInt(r.Calls), r.WindowS,
			fmtInt(uint64(math.Round(r.P99US/1e3))), float64(r.ServerRSSKiB)/1024)
	}
	return nil
}

// regionHOL writes the head-of-line rows of impls.
func regionHOL(b *strings.Builder, rows []results.Row, o tableOpts) error {
	writeHead(b, []string{"impl", "fast calls/s", "fast p50 µs", "fast p99 µs"})
	for _, impl := range o.impls {
		r, err := findRow("hol/"+impl, rows)
		if err != nil {
			return err
		}
		if r.Failed {
			return fmt.Errorf("hol/%s failed: %s", impl, r.FailReason)
		}
		qps, _ := formatValue(r.QPS, "k")
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", implCell(impl, o.bold), qps, fmtUS(r.P50US), fmtUS(r.P99US))
	}
	return nil
}

// regionCluster writes the cluster scenario's table, as the page has it.
func regionCluster(b *strings.Builder, rows []results.Row) error {
	if len(clusters(rows)) == 0 {
		return fmt.Errorf("the run has no cluster rows (benchall -scenario cluster)")
	}
	clusterTable(b, rows)
	return nil
}

// RegionFiles lists the files, relative to the repository root, whose
// benchmark regions Rewrite keeps: README.md and the docs, but for
// docs/benchmarks.md, which Page writes whole.
func RegionFiles(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	files := []string{"README.md"}
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			return nil, err
		}
		if rel != filepath.Join("docs", "benchmarks.md") {
			files = append(files, rel)
		}
	}
	return files, nil
}

// RewriteRegions rewrites the benchmark regions of every file RegionFiles
// lists under root, and returns those it changed.
func RewriteRegions(root string, sets Sets) (changed []string, err error) {
	return regions(root, sets, true)
}

// StaleRegions returns the files under root whose benchmark regions are
// not what sets make of them, without changing any.
func StaleRegions(root string, sets Sets) ([]string, error) {
	return regions(root, sets, false)
}

func regions(root string, sets Sets, write bool) ([]string, error) {
	files, err := RegionFiles(root)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, f := range files {
		path := filepath.Join(root, f)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		doc, err := RewriteSets(string(b), sets)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if doc == string(b) {
			continue
		}
		changed = append(changed, f)
		if write {
			if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
				return nil, err
			}
		}
	}
	return changed, nil
}
