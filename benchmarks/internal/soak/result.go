package soak

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"myrpc/benchmarks/internal/faultproxy"
)

// Result is what the soak of one stage found.
type Result struct {
	Stage string `json:"stage"`
	// Calls counts the calls made; OK, those that came back with exactly
	// the bytes sent; Errors, the failed calls by status code.
	Calls  int64            `json:"calls"`
	OK     int64            `json:"ok"`
	Errors map[string]int64 `json:"errors"`
	// CrossTalk counts successful calls whose reply was not the bytes
	// sent; Hangs, calls not back by their deadline plus HangMargin;
	// NoStatus, errors without a status code; WrongResults, calls of the
	// panicking method that succeeded.
	CrossTalk    int64 `json:"cross_talk"`
	Hangs        int64 `json:"hangs"`
	NoStatus     int64 `json:"no_status"`
	WrongResults int64 `json:"wrong_results"`
	// Recovered is set when, after the faults stopped, every caller had a
	// successful call within RecoveryLimit and then a run of successes;
	// RecoveryMS is when the last caller's first success came.
	Recovered  bool  `json:"recovered"`
	RecoveryMS int64 `json:"recovery_ms"`
	// Kills and Terms count the server's restarts after SIGKILL and after
	// SIGTERM; Crashes, its exits that nobody asked for.
	Kills   int `json:"kills"`
	Terms   int `json:"terms"`
	Crashes int `json:"crashes"`
	// The server's resident memory and open files at rest: after the
	// warm-up of a fresh server, and after the recovery.
	RSSStartKiB int64 `json:"rss_start_kib"`
	RSSEndKiB   int64 `json:"rss_end_kib"`
	FDsStart    int   `json:"fds_start"`
	FDsEnd      int   `json:"fds_end"`
	// The soak process's goroutines before the stage and after it, its
	// client closed.
	GoroutinesStart int `json:"goroutines_start"`
	GoroutinesEnd   int `json:"goroutines_end"`
	// MaxLagMS is how late, at worst, a timer of the soak process fired
	// during the stage: a measure of the machine's load, against which a
	// hang of about that size would be the soak's own doing.
	MaxLagMS int64 `json:"max_lag_ms"`
	// Proxy is what the fault proxy did.
	Proxy faultproxy.Stats `json:"proxy"`
	// Failures say why the stage failed; none means it passed.
	Failures []string `json:"failures"`
	// Samples are the first few examples of each kind of finding.
	Samples map[string][]string `json:"samples,omitempty"`
}

// Passed reports whether the stage passed.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// check adds the failures that the counts show.
func (r *Result) check() {
	add := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	if r.CrossTalk > 0 {
		add("%d calls got a reply that was not the bytes they sent (cross-talk)", r.CrossTalk)
	}
	if r.Hangs > 0 {
		add("%d calls were not back by their deadline plus %v (hangs); the soak's own timers fired at most %d ms late", r.Hangs, HangMargin, r.MaxLagMS)
	}
	if r.NoStatus > 0 {
		add("%d errors carried no status code", r.NoStatus)
	}
	if r.WrongResults > 0 {
		add("%d calls of the panicking method succeeded", r.WrongResults)
	}
	if r.Crashes > 0 {
		add("the server exited by itself %d times", r.Crashes)
	}
	if !r.Recovered && !r.failedWith("no recovery") {
		add("no recovery: the stage ended before the calls succeeded again")
	}
	if r.FDsEnd > r.FDsStart+FDSlack {
		add("the server holds %d open files at the end, %d at the start", r.FDsEnd, r.FDsStart)
	}
	if r.RSSStartKiB > 0 && r.RSSEndKiB > RSSFactor*r.RSSStartKiB+RSSSlackKiB {
		add("the server's resident memory grew from %d KiB to %d KiB", r.RSSStartKiB, r.RSSEndKiB)
	}
	if r.GoroutinesEnd > r.GoroutinesStart+GoroutineSlack {
		add("the soak has %d goroutines after the stage, %d before", r.GoroutinesEnd, r.GoroutinesStart)
	}
}

func (r *Result) failedWith(prefix string) bool {
	for _, f := range r.Failures {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	return false
}

// File is a soak run, as written to results/soak/latest.json.
type File struct {
	// Duration is how long the faults went on in each stage.
	Duration string `json:"duration"`
	// Seed replays the run's schedule of faults and restarts.
	Seed uint64 `json:"seed"`
	// Commit is the code's git commit, Date the run's day and time (UTC).
	Commit    string   `json:"commit"`
	Date      string   `json:"date"`
	GoVersion string   `json:"go_version"`
	Cores     int      `json:"cores"`
	Callers   int      `json:"callers"`
	Stages    []Result `json:"stages"`
}

// Write writes f to path as indented JSON.
func (f File) Write(path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Read reads a File written by Write.
func Read(path string) (File, error) {
	var f File
	b, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Table returns the results as a Markdown table, a row per stage.
func Table(stages []Result) string {
	var b strings.Builder
	b.WriteString("| stage | calls | ok | errors by code | cross-talk | hangs | recovery | restarts (SIGKILL / SIGTERM) | server RSS start → end | server fds start → end | client goroutines start → end | result |\n")
	b.WriteString("| --- | ---: | ---: | --- | ---: | ---: | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range stages {
		recovery := "**none**"
		if r.Recovered {
			recovery = fmt.Sprintf("%.1f s", float64(r.RecoveryMS)/1000)
		}
		result := "pass"
		if !r.Passed() {
			result = "**fail**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %d | %d | %s | %d / %d | %s → %s | %d → %d | %d → %d | %s |\n",
			strings.ToUpper(r.Stage), r.Calls, r.OK, errorCounts(r), r.CrossTalk, r.Hangs, recovery,
			r.Kills, r.Terms, mib(r.RSSStartKiB), mib(r.RSSEndKiB), r.FDsStart, r.FDsEnd,
			r.GoroutinesStart, r.GoroutinesEnd, result)
	}
	return b.String()
}

// errorCounts lists a stage's errors by code, most frequent first.
func errorCounts(r Result) string {
	type kv struct {
		k string
		v int64
	}
	var kvs []kv
	for k, v := range r.Errors {
		kvs = append(kvs, kv{k, v})
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].v != kvs[j].v {
			return kvs[i].v > kvs[j].v
		}
		return kvs[i].k < kvs[j].k
	})
	var parts []string
	for _, x := range kvs {
		parts = append(parts, fmt.Sprintf("%s %d", x.k, x.v))
	}
	if r.NoStatus > 0 {
		parts = append(parts, fmt.Sprintf("(of which without a status: %d)", r.NoStatus))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func mib(kib int64) string {
	if kib == 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

// Failures lists every failed stage's reasons and samples, in Markdown.
func Failures(stages []Result) string {
	var b strings.Builder
	for _, r := range stages {
		if r.Passed() {
			continue
		}
		fmt.Fprintf(&b, "- %s:\n", strings.ToUpper(r.Stage))
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "  - %s\n", f)
		}
		var kinds []string
		for k := range r.Samples {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			for _, s := range r.Samples[k] {
				fmt.Fprintf(&b, "  - %s: `%s`\n", k, oneLine(s))
			}
		}
	}
	return b.String()
}

// oneLine keeps the first line of s, without backquotes, short.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.ReplaceAll(s, "`", "'")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
