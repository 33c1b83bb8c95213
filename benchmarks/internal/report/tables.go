package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"myrpc/benchmarks/internal/impls"
	"myrpc/benchmarks/internal/results"
)

// Baselines are the implementations every QPS is compared with, in the
// order of the ratio columns.
var Baselines = []string{"grpc", "raw-conn", "raw-pipe"}

// Ratio returns r's QPS divided by the QPS of implementation base at the
// same callers and payload. ok is false if there is no such row, or it
// failed or measured nothing, or r failed.
func Ratio(rows []results.Row, r results.Row, base string) (ratio float64, ok bool) {
	if r.Failed || r.Kind != results.KindCase {
		return 0, false
	}
	for _, b := range rows {
		if b.Kind == results.KindCase && b.Impl == base && b.Callers == r.Callers && b.PayloadBytes == r.PayloadBytes {
			if b.Failed || b.QPS <= 0 {
				return 0, false
			}
			return r.QPS / b.QPS, true
		}
	}
	return 0, false
}

// cases returns the case rows, sorted by payload, callers, then table
// order.
func cases(rows []results.Row) []results.Row {
	var out []results.Row
	for _, r := range rows {
		if r.Kind == results.KindCase {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b results.Row) int {
		return cmp.Or(cmp.Compare(a.PayloadBytes, b.PayloadBytes), cmp.Compare(a.Callers, b.Callers),
			cmp.Compare(impls.Rank(a.Impl), impls.Rank(b.Impl)), cmp.Compare(a.Impl, b.Impl))
	})
	return out
}

// bursts returns the burst rows in table order.
func bursts(rows []results.Row) []results.Row {
	var out []results.Row
	for _, r := range rows {
		if r.Kind == results.KindBurst {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b results.Row) int {
		return cmp.Or(cmp.Compare(impls.Rank(a.Impl), impls.Rank(b.Impl)), cmp.Compare(a.Impl, b.Impl))
	})
	return out
}

// payloads returns the payload sizes of the case rows, ascending.
func payloads(rows []results.Row) []int {
	var out []int
	for _, r := range cases(rows) {
		if !slices.Contains(out, r.PayloadBytes) {
			out = append(out, r.PayloadBytes)
		}
	}
	return out
}

// implNames returns the implementations of the case rows in table order.
func implNames(rows []results.Row) []string {
	var out []string
	for _, r := range rows {
		if r.Kind == results.KindCase && !slices.Contains(out, r.Impl) {
			out = append(out, r.Impl)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(impls.Rank(a), impls.Rank(b)), cmp.Compare(a, b))
	})
	return out
}

// sizeName names a payload size: "64 B", "1 KiB".
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// fmtCount formats a rate or count compactly: 987, 56.1k, 1.02M.
func fmtCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// fmtInt groups the digits of n in threes: 1,234,567.
func fmtInt(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtUS formats microseconds: one decimal below 10, whole numbers above.
func fmtUS(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmtInt(uint64(math.Round(v)))
}

func fmtRatio(v float64, ok bool) string {
	if !ok {
		return "—"
	}
	if v >= 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtMiB(kib int64) string {
	if kib <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", float64(kib)/1024)
}

func fmtQPS(r results.Row) string {
	s := fmtCount(r.QPS)
	if r.Reps > 1 {
		s += fmt.Sprintf(" (%s–%s)", fmtCount(r.QPSMin), fmtCount(r.QPSMax))
	}
	return s
}

// caseTable writes the table of one payload size.
func caseTable(b *strings.Builder, rows []results.Row, payload int) {
	b.WriteString("| impl | callers | QPS |")
	for _, base := range Baselines {
		fmt.Fprintf(b, " ×%s |", base)
	}
	b.WriteString(" p50 µs | p99 µs | p999 µs | errors | server CPU µs/call | client CPU µs/call | server RSS MiB | frames/write |\n")
	b.WriteString("| --- | ---: | ---: |")
	for range Baselines {
		b.WriteString(" ---: |")
	}
	b.WriteString(" ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range cases(rows) {
		if r.PayloadBytes != payload {
			continue
		}
		if r.Failed && r.Calls == 0 {
			fmt.Fprintf(b, "| %s | %d | failed |", r.Impl, r.Callers)
			for range Baselines {
				b.WriteString(" — |")
			}
			fmt.Fprintf(b, " — | — | — | %s | — | — | %s | — |\n", fmtInt(r.Errors), fmtMiB(r.ServerRSSKiB))
			continue
		}
		qps := fmtQPS(r)
		if r.Failed {
			qps += " (failed)"
		}
		fmt.Fprintf(b, "| %s | %d | %s |", r.Impl, r.Callers, qps)
		for _, base := range Baselines {
			ratio, ok := Ratio(rows, r, base)
			fmt.Fprintf(b, " %s |", fmtRatio(ratio, ok))
		}
		fpw := "—"
		if r.FramesPerWrite > 0 {
			fpw = fmt.Sprintf("%.1f", r.FramesPerWrite)
		}
		fmt.Fprintf(b, " %s | %s | %s | %s | %.1f | %.1f | %s | %s |\n",
			fmtUS(r.P50US), fmtUS(r.P99US), fmtUS(r.P999US), fmtInt(r.Errors),
			r.ServerCPUUSPerCall, r.ClientCPUUSPerCall, fmtMiB(r.ServerRSSKiB), fpw)
	}
}

// hols returns the head-of-line rows, in implementation order.
func hols(rows []results.Row) []results.Row {
	var out []results.Row
	for _, r := range rows {
		if r.Kind == results.KindHOL {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b results.Row) int { return impls.Rank(a.Impl) - impls.Rank(b.Impl) })
	return out
}

// holTable writes the head-of-line table: the fast calls' latency while a
// few callers make slow calls.
func holTable(b *strings.Builder, rows []results.Row) {
	b.WriteString("| impl | callers | slow callers | slow calls done | fast calls/s | fast p50 µs | fast p99 µs | fast p999 µs | errors |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range hols(rows) {
		if r.Failed && r.Calls == 0 {
			fmt.Fprintf(b, "| %s | %d | %d | — | failed: %s | — | — | — | %s |\n", r.Impl, r.Callers, r.SlowCallers, r.FailReason, fmtInt(r.Errors))
			continue
		}
		fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s | %s | %s | %s |\n", r.Impl, r.Callers, r.SlowCallers,
			fmtInt(r.SlowCalls), fmtQPS(r), fmtUS(r.P50US), fmtUS(r.P99US), fmtUS(r.P999US), fmtInt(r.Errors))
	}
}

// holIntro describes the head-of-line scenario of rows in a sentence.
func holIntro(rows []results.Row) string {
	h := hols(rows)
	if len(h) == 0 {
		return ""
	}
	r := h[0]
	return fmt.Sprintf("%d closed-loop callers with %s payloads, through a client allowed %d connections; %d of the callers make calls "+
		"that the server holds for %s each (Echo's `delay_ms`), the rest make ordinary calls. The table measures the ordinary calls only: "+
		"if a slow call holds up the calls behind it (on its connection, or waiting for a connection), their tail latency shows it. "+
		"grpc-go and net/rpc use one connection anyway; V1 dials a new connection per call and ignores the limit. The raw "+
		"implementations do not decode requests and so cannot be asked to wait: they are not in this table.",
		r.Callers, sizeName(r.PayloadBytes), r.MaxConns, r.SlowCallers, time.Duration(r.SlowDelayMs*float64(time.Millisecond)))
}

// burstTable writes the burst table, or nothing if there are no bursts.
func burstTable(b *strings.Builder, rows []results.Row) {
	bs := bursts(rows)
	if len(bs) == 0 {
		return
	}
	b.WriteString("| impl | goroutines | ok | errors | all done in | p50 ms | p99 ms | server CPU µs/call | server RSS MiB |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range bs {
		if r.Failed {
			fmt.Fprintf(b, "| %s | %s | %s | %s | failed | — | — | — | %s |\n", r.Impl, fmtInt(uint64(r.Callers)), fmtInt(r.Calls), fmtInt(r.Errors), fmtMiB(r.ServerRSSKiB))
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %.1f | %.1f | %.1f | %s |\n",
			r.Impl, fmtInt(uint64(r.Callers)), fmtInt(r.Calls), fmtInt(r.Errors),
			(time.Duration(r.WindowS * float64(time.Second))).Round(time.Millisecond),
			r.P50US/1e3, r.P99US/1e3, r.ServerCPUUSPerCall, fmtMiB(r.ServerRSSKiB))
	}
}

// problems writes a list of the rows that failed or saw errors, with their
// most frequent errors; nothing if there are none.
func problems(b *strings.Builder, rows []results.Row) {
	all := append(append(cases(rows), bursts(rows)...), hols(rows)...)
	for _, r := range all {
		if !r.Failed && r.Errors == 0 {
			continue
		}
		what := fmt.Sprintf("%d callers, %s", r.Callers, sizeName(r.PayloadBytes))
		switch r.Kind {
		case results.KindBurst:
			what = fmt.Sprintf("burst of %s", fmtInt(uint64(r.Callers)))
		case results.KindHOL:
			what = "head-of-line scenario"
		}
		fmt.Fprintf(b, "- **%s**, %s: %s errors", r.Impl, what, fmtInt(r.Errors))
		if r.Failed {
			fmt.Fprintf(b, "; failed: %s", r.FailReason)
		}
		b.WriteString("\n")
		for _, s := range r.ErrorSamples {
			fmt.Fprintf(b, "  - `%s`\n", strings.ReplaceAll(s, "`", "'"))
		}
	}
}

// noiseThreshold is the share of the CPUs other processes may use during a
// case before the report points it out.
const noiseThreshold = 5.0

// noise writes a paragraph naming the cases during which other processes
// used more than noiseThreshold percent of the CPUs; nothing if none did.
func noise(b *strings.Builder, rows []results.Row) {
	var noisy []string
	for _, r := range append(append(cases(rows), bursts(rows)...), hols(rows)...) {
		if r.OtherCPUPct > noiseThreshold {
			what := fmt.Sprintf("%s %d callers %s", r.Impl, r.Callers, sizeName(r.PayloadBytes))
			switch r.Kind {
			case results.KindBurst:
				what = r.Impl + " burst"
			case results.KindHOL:
				what = r.Impl + " head-of-line"
			}
			noisy = append(noisy, fmt.Sprintf("%s (%.0f%%)", what, r.OtherCPUPct))
		}
	}
	if len(noisy) == 0 {
		return
	}
	fmt.Fprintf(b, "Other processes used more than %.0f%% of the CPUs during these cases, so their numbers are less reliable: %s.\n",
		noiseThreshold, strings.Join(noisy, ", "))
}

// runLine describes the run of rows in one paragraph.
func runLine(rows []results.Row) string {
	if len(rows) == 0 {
		return "No results."
	}
	r := rows[0]
	f := r.Flags
	pin := "server and client unpinned (the kernel places both on any CPU)"
	if f.Pin {
		pin = "server pinned on CPU 0 and client on CPU 1, GOMAXPROCS=1 each"
	}
	reps := "1 repetition"
	if f.Reps > 1 {
		reps = fmt.Sprintf("%d repetitions per case, in rounds (the median, with the range in parentheses)", f.Reps)
	}
	s := fmt.Sprintf("Run started %s: warm-up %s and %s measured per case, %s, %s.",
		r.StartedAt.UTC().Format("2006-01-02 15:04 MST"), f.Warmup, f.Duration, reps, pin)
	if r.RunWallS > 0 {
		s += fmt.Sprintf(" The whole run took %s.", time.Duration(r.RunWallS*float64(time.Second)).Round(time.Second).String())
	}
	return s
}

// machineLine describes the machine of rows in one paragraph.
func machineLine(rows []results.Row) string {
	if len(rows) == 0 {
		return ""
	}
	m := rows[0].Machine
	s := fmt.Sprintf("%s, %d cores, GOMAXPROCS %d, %s %s/%s", m.CPUModel, m.Cores, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch)
	if m.Kernel != "" {
		s += ", Linux " + m.Kernel
	}
	if m.MaxOpenFiles > 0 {
		s += fmt.Sprintf(", %s open files allowed", fmtInt(m.MaxOpenFiles))
	}
	return s + fmt.Sprintf(", commit %s.", m.GitCommit)
}

// Markdown returns results.md: the run, the machine, one table per payload
// size, the burst table and the errors seen.
func Markdown(rows []results.Row) string {
	var b strings.Builder
	b.WriteString("# Benchmark results\n\n")
	b.WriteString(runLine(rows) + "\n\n")
	b.WriteString("Machine: " + machineLine(rows) + "\n\n")
	b.WriteString("QPS counts successful calls per second; ×grpc, ×raw-conn and ×raw-pipe divide it by that implementation's QPS " +
		"at the same callers and payload. Latencies are of successful calls. CPU is user + system time per successful call.\n")
	for _, p := range payloads(rows) {
		fmt.Fprintf(&b, "\n## Payload %s\n\n", sizeName(p))
		caseTable(&b, rows, p)
	}
	if bs := bursts(rows); len(bs) > 0 {
		fmt.Fprintf(&b, "\n## Burst: %s goroutines, one call each, all at once\n\n", fmtInt(uint64(bs[0].Callers)))
		burstTable(&b, rows)
	}
	if len(hols(rows)) > 0 {
		b.WriteString("\n## Head-of-line: slow calls among fast ones\n\n" + holIntro(rows) + "\n\n")
		holTable(&b, rows)
	}
	if len(clusters(rows)) > 0 {
		b.WriteString("\n## Cluster: one client, three servers, one of them slow\n\n" + clusterIntro(rows) + "\n\n")
		clusterTable(&b, rows)
	}
	var p strings.Builder
	problems(&p, rows)
	if p.Len() > 0 {
		b.WriteString("\n## Errors\n\n")
		b.WriteString(p.String())
	}
	var n strings.Builder
	noise(&n, rows)
	if n.Len() > 0 {
		b.WriteString("\n## Noise\n\n")
		b.WriteString(n.String())
	}
	return b.String()
}

// clusters returns the cluster rows, in implementation order, each
// implementation's in the order they ran.
func clusters(rows []results.Row) []results.Row {
	var out []results.Row
	for _, r := range rows {
		if r.Kind == results.KindCluster {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b results.Row) int { return impls.Rank(a.Impl) - impls.Rank(b.Impl) })
	return out
}

// clusterTable writes the cluster table: the calls' latency under each
// balancing policy while one server is slow, all of them and those the
// fast servers answered, and the calls lost when a server is killed.
func clusterTable(b *strings.Builder, rows []results.Row) {
	b.WriteString("| impl | policy | servers | callers | load | server killed | calls/s | p50 µs | p99 µs | p999 µs | calls the slow server answered | their p99 µs | fast servers' calls: p50 µs | p99 µs | failed calls |\n")
	b.WriteString("| --- | --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range clusters(rows) {
		load := "closed loop"
		if r.OfferedQPS > 0 {
			load = fmtCount(r.OfferedQPS) + "/s offered"
		}
		killed := "no"
		if r.Killed > 0 {
			killed = "halfway"
			if r.Reps > 1 {
				killed = fmt.Sprintf("halfway, in each of %d runs", r.Reps)
			}
		}
		if r.Failed && r.Calls == 0 {
			fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %s | failed: %s | — | — | — | — | — | — | — | %s |\n", r.Impl, r.Policy, r.Servers, r.Callers, load, killed, r.FailReason, fmtInt(r.Errors))
			continue
		}
		share := "—"
		if r.Calls > 0 {
			share = fmt.Sprintf("%s (%.1f%%)", fmtInt(r.SlowServed), 100*float64(r.SlowServed)/float64(r.Calls))
		}
		fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Impl, r.Policy, r.Servers, r.Callers, load, killed,
			fmtQPS(r), fmtUS(r.P50US), fmtUS(r.P99US), fmtUS(r.P999US), share, fmtUS(r.SlowP99US), fmtUS(r.FastP50US), fmtUS(r.FastP99US), fmtInt(r.Errors))
	}
}

// clusterIntro describes the cluster scenario of rows in a paragraph.
func clusterIntro(rows []results.Row) string {
	c := clusters(rows)
	if len(c) == 0 {
		return ""
	}
	r := c[0]
	open := ""
	for _, o := range c {
		if o.OfferedQPS > 0 {
			open = fmt.Sprintf("In a closed loop each caller makes its next call as soon as its last has ended, so each policy runs at the load it lets the callers make. "+
				"The rows at %s/s offered are an open loop: %s calls a second start on a fixed schedule, whichever caller is free making each, "+
				"so both policies carry the same load, and each call's latency counts from when it was due, its wait for a free caller included. ",
				fmtCount(o.OfferedQPS), fmtCount(o.OfferedQPS))
			break
		}
	}
	return fmt.Sprintf("One client spreads %d callers with %s payloads over %d servers, each in its own process; "+
		"the first of them is slow: it holds every call for %s before it answers. "+
		"Under round_robin every server gets its turn, so about one call in %d waits for the slow one; "+
		"p2c (power of two choices, the default) picks two servers at random and sends the call to the one with fewer calls in flight, "+
		"and the slow server, whose calls pile up, is picked less. %s"+
		"The first latencies are of every call; then come the calls the slow server answered, with their p99, "+
		"and the latencies of the calls the fast servers answered (the slow server marks its answers in their response metadata). "+
		"In the last row one of the fast servers is killed (SIGKILL) halfway through the measured window: "+
		"the calls that fail are those it had in flight, of which the client cannot know whether they ran; calls never sent to it go to the others.",
		r.Callers, sizeName(r.PayloadBytes), r.Servers, time.Duration(r.SlowDelayMs*float64(time.Millisecond)), r.Servers, open)
}
