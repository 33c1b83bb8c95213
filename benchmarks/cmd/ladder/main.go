// Command ladder runs the reliability rows of the conformance suite
// against every stage and writes docs/reliability.md from the results: a
// row per fault, a column per stage, each cell pass, fail, or not
// applicable with the reason the suite gave. Below the rows it renders the
// last soak run (make soak) from benchmarks/results/soak/latest.json.
// Nothing on the page is typed by hand.
//
//	ladder -root .. -out ../docs/reliability.md [-soak FILE]
//
// It exits 1 if a row fails on a stage to which it applies.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"myrpc/benchmarks/internal/soak"
	"myrpc/shared/proto/rpctest"
)

// stages are the stage folders, in column order.
var stages = []struct{ name, dir string }{
	{"V1", "v1-basic"},
	{"V2", "v2-pool-keepalive"},
	{"V3", "v3-async-mux"},
	{"V4", "v4-epoll-batch"},
	{"V5", "v5-cluster"},
}

// parallel is how many stages' suites run at once.
const parallel = 2

// cell is one row's result on one stage.
type cell struct {
	action string // pass, fail or skip
	reason string // why a skipped row does not apply
}

func main() {
	root := flag.String("root", "..", "the repository's root")
	out := flag.String("out", "", "write the page here (default: standard output)")
	soakFile := flag.String("soak", "", "the soak results to render (default: ROOT/benchmarks/results/soak/latest.json)")
	flag.Parse()
	if *soakFile == "" {
		*soakFile = filepath.Join(*root, "benchmarks", "results", "soak", "latest.json")
	}

	results := make(map[string]map[string]cell) // stage -> test -> cell
	failed := 0
	// The stages' suites run two at a time: much of a row's time is spent
	// waiting (timeouts, restarts, leases), and the machine has two cores.
	cells := make([]map[string]cell, len(stages))
	errs := make([]error, len(stages))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, st := range stages {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := run(filepath.Join(*root, st.dir))
			cells[i], errs[i] = c, err
		})
	}
	wg.Wait()
	for i, st := range stages {
		if errs[i] != nil {
			fmt.Fprintf(os.Stderr, "ladder: %s: %v\n", st.dir, errs[i])
			os.Exit(1)
		}
		results[st.name] = cells[i]
	}
	page := render(results, &failed)
	sk, err := renderSoak(*soakFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ladder:", err)
		os.Exit(1)
	}
	page += sk
	if *out == "" {
		os.Stdout.WriteString(page)
	} else if err := os.WriteFile(*out, []byte(page), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "ladder:", err)
		os.Exit(1)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "ladder: %d rows failed\n", failed)
		os.Exit(1)
	}
}

// event is a line of go test -json.
type event struct {
	Action string
	Test   string
	Output string
}

// run runs the stage's reliability rows and returns each row's cell.
func run(dir string) (map[string]cell, error) {
	cmd := exec.Command("go", "test", "-json", "-count=1", "-run", "^TestReliability$", "./conformance/")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil && len(stdout) == 0 {
		return nil, fmt.Errorf("%v: %s", err, stderr.String())
	}
	cells := make(map[string]cell)
	reasons := make(map[string]string)
	outputs := make(map[string]*strings.Builder) // a row's output, subtests included
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		// Rows are the direct subtests of TestReliability.
		name, ok := strings.CutPrefix(ev.Test, "TestReliability/")
		if !ok {
			continue
		}
		if ev.Action == "output" {
			row, _, _ := strings.Cut(name, "/")
			if outputs[row] == nil {
				outputs[row] = new(strings.Builder)
			}
			outputs[row].WriteString(ev.Output)
		}
		if strings.Contains(name, "/") {
			continue
		}
		switch ev.Action {
		case "output":
			if _, r, ok := strings.Cut(ev.Output, "not applicable: "); ok {
				reasons[name] = strings.TrimSpace(r)
			}
		case "pass", "fail", "skip":
			cells[name] = cell{action: ev.Action, reason: reasons[name]}
			if ev.Action == "fail" && outputs[name] != nil {
				// The page says fail; the reader of the run needs why.
				fmt.Fprintf(os.Stderr, "ladder: %s: %s failed:\n%s", dir, name, outputs[name])
			}
		}
	}
	return cells, sc.Err()
}

// render writes the page.
func render(results map[string]map[string]cell, failed *int) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# The reliability ladder\n\n")
	w("<!-- Written by `make ladder` from the conformance suite's results. Do not edit by hand: run it again. -->\n\n")
	w("Every row is a fault or a bad input that a server or client of myrpc meets sooner or later, and every row is a test: ")
	w("`R01_length_fields_near_4GiB` and its neighbours in [`shared/proto/rpctest`](../shared/proto/rpctest/reliability.go), ")
	w("run against each stage by its `conformance` package. This page is those tests' results, written by `make ladder`; ")
	w("`make test` fails if it is out of date. A row that does not apply to a stage says why, in the words of the test that skipped it.\n\n")
	w("To run one row against one stage: `go test -run 'Reliability/R12' -v ./v2-pool-keepalive/conformance/`.\n\n")
	w("| # | fault |")
	for _, st := range stages {
		w(" %s |", st.name)
	}
	w("\n| ---: | --- |")
	for range stages {
		w(" --- |")
	}
	w("\n")
	totals := make(map[string]map[string]int)
	for _, st := range stages {
		totals[st.name] = map[string]int{}
	}
	for _, r := range rpctest.Rows() {
		w("| %d | %s |", r.Num, r.Title)
		for _, st := range stages {
			c, ok := results[st.name][r.Test]
			switch {
			case !ok:
				w(" **missing** |")
				totals[st.name]["fail"]++
				*failed++
			case c.action == "pass":
				w(" pass |")
				totals[st.name]["pass"]++
			case c.action == "skip":
				reason := c.reason
				if reason == "" {
					reason = "skipped"
				}
				w(" n/a: %s |", reason)
				totals[st.name]["n/a"]++
			default:
				w(" **fail** |")
				totals[st.name]["fail"]++
				*failed++
			}
		}
		w("\n")
	}
	w("\nTotals:\n\n")
	for _, st := range stages {
		t := totals[st.name]
		w("- %s: %d pass, %d fail, %d not applicable\n", st.name, t["pass"], t["fail"], t["n/a"])
	}
	return b.String()
}

// renderSoak writes the page's soak section from the results of the last
// soak run; a missing file says so.
func renderSoak(path string) (string, error) {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("\n## Soak\n\n")
	w("`make soak` is the chaos test of every stage ([`benchmarks/internal/soak`](../benchmarks/internal/soak/soak.go)): ")
	w("%d callers with deadlines from 200 ms to 2 s call a server in its own process through a fault proxy that resets, ", soak.DefaultCallers)
	w("half-closes, stalls and fragments their connections at random times, while the server is killed with SIGKILL or stopped ")
	w("with SIGTERM and restarted on the same port; some calls ask the server to wait, some call a handler that panics. ")
	w("Every reply must carry exactly the bytes its call sent (anything else is cross-talk), every failure must carry a status code, ")
	w("and a call not back by its deadline plus %g s is a hang. ", soak.HangMargin.Seconds())
	w("When the faults stop, every caller must begin a run of %d successful calls within %g s, and the server's memory and open files ", soak.RecoveryRun, soak.RecoveryLimit.Seconds())
	w("(at rest, a fresh server after a warm-up against the last one after the recovery) and the client's goroutines must come back ")
	w("to where they were. `make test` runs it for 10 s per stage; this table is the last `make soak`, ")
	w("from [`benchmarks/results/soak/latest.json`](../benchmarks/results/soak/latest.json).\n\n")
	f, err := soak.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		w("No soak results yet: run `make soak`.\n")
		return b.String(), nil
	}
	if err != nil {
		return "", err
	}
	w("Run of %s at commit `%s`: %s of faults per stage, %d callers, %s, %d cores; seed %d (`SOAK_SEED=%d make soak` replays its schedule of faults and restarts).\n\n",
		f.Date, f.Commit, f.Duration, f.Callers, f.GoVersion, f.Cores, f.Seed, f.Seed)
	w("%s", soak.Table(f.Stages))
	if fl := soak.Failures(f.Stages); fl != "" {
		w("\nWhat failed:\n\n%s", fl)
	}
	return b.String(), nil
}
