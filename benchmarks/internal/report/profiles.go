package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"myrpc/benchmarks/internal/cpuprof"
)

// Profile regions: the run of make profile, in benchmarks/results/profile/,
// is a folder per stage (see cmd/profile), and its regions name it as
// @profile:
//
//	<!-- bench@profile:profiles v2 v3 n=10 -->
//	**Server** … (the tables; rewritten)
//	<!-- /bench -->
//	<!-- bench@profile:v3/server.write - v2/server.write %.0f -->12<!-- /bench -->
//
// A profiles region shows, for each stage it names, side by side: the
// server's top n functions by flat time (10 if n is not given), the
// client's, and the time of each kind of work (cpuprof.Category) on both
// sides, all in percent of the side's CPU time, with a line on the runs.
//
// Over the profiles, a term of an expression is a number, a stage's value
// (v3.qps, v3.calls, v3.cores, v3.load: the 1-minute load average before
// the case), or a side's (v3/server.KEY, v3/client.KEY): the percent of its
// CPU time in the category of that key (cpuprof.Categories: write, read,
// epoll, futex, sched, malloc, gc, proto, myrpc, …), syscalls (the time in
// every system call, futex included), cpu (seconds of CPU the profile
// holds) or samples.

// StageProfile is one stage's profiles, as cmd/profile writes them.
type StageProfile struct {
	Meta           cpuprof.Meta
	Server, Client cpuprof.Summary
}

// loadProfiles reads the stages' folders in dir; it returns nil if dir
// holds none.
func loadProfiles(dir string) (map[string]StageProfile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out map[string]StageProfile
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		var sp StageProfile
		err := readJSON(filepath.Join(sub, "meta.json"), &sp.Meta)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = readJSON(filepath.Join(sub, "server.json"), &sp.Server)
		}
		if err == nil {
			err = readJSON(filepath.Join(sub, "client.json"), &sp.Client)
		}
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]StageProfile{}
		}
		out[e.Name()] = sp
	}
	return out, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// profileCommit is the commit the profiles measured, if they all measured
// the same one, or "".
func profileCommit(ps map[string]StageProfile) string {
	c := ""
	for _, p := range ps {
		switch {
		case c == "":
			c = p.Meta.Commit
		case c != p.Meta.Commit:
			return ""
		}
	}
	return c
}

// profileStages returns the profiles of the stages named.
func profileStages(ps map[string]StageProfile, names []string) ([]StageProfile, error) {
	var out []StageProfile
	for _, n := range names {
		p, ok := ps[n]
		if !ok {
			return nil, fmt.Errorf("no profile of %s in benchmarks/results/profile (run make profile STAGE=%s)", n, n)
		}
		out = append(out, p)
	}
	return out, nil
}

// regionProfiles writes a profiles region: args are the stages, and maybe
// n=N.
func regionProfiles(b *strings.Builder, ps map[string]StageProfile, args string) error {
	n := 10
	var names []string
	for _, a := range strings.Fields(args) {
		if v, ok := strings.CutPrefix(a, "n="); ok {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 1 {
				return fmt.Errorf("n=%s: want a count", v)
			}
			continue
		}
		names = append(names, a)
	}
	if len(names) == 0 {
		return errors.New("no stages")
	}
	stages, err := profileStages(ps, names)
	if err != nil {
		return err
	}
	for _, side := range []string{"Server", "Client"} {
		fmt.Fprintf(b, "**%s**, the functions that ran the most, in %% of the %s's CPU time (flat: running; cum: on the stack):\n\n", side, strings.ToLower(side))
		heads := []string{"#"}
		for _, name := range names {
			heads = append(heads, name, "flat %", "cum %")
		}
		writeProfileHead(b, heads)
		for i := range n {
			line := []string{strconv.Itoa(i + 1)}
			empty := true
			for _, sp := range stages {
				top := sp.Server.Top
				if side == "Client" {
					top = sp.Client.Top
				}
				if i >= len(top) {
					line = append(line, "", "", "")
					continue
				}
				empty = false
				f := top[i]
				line = append(line, "`"+cpuprof.ShortName(f.Name)+"`", fmt.Sprintf("%.1f", f.Flat), fmt.Sprintf("%.1f", f.Cum))
			}
			if empty {
				break
			}
			b.WriteString("| " + strings.Join(line, " | ") + " |\n")
		}
		b.WriteString("\n")
	}

	b.WriteString("**By kind of work**, in % of each side's CPU time:\n\n")
	heads := []string{"kind of work"}
	for _, side := range []string{"server", "client"} {
		for _, name := range names {
			heads = append(heads, name+" "+side)
		}
	}
	writeHead(b, heads)
	for _, c := range cpuprof.Categories {
		line := []string{c.Name}
		any := false
		for _, side := range []string{"server", "client"} {
			for _, sp := range stages {
				v := categoryPct(sideSummary(sp, side), c.Name)
				any = any || v >= 0.05
				line = append(line, fmt.Sprintf("%.1f", v))
			}
		}
		if any {
			b.WriteString("| " + strings.Join(line, " | ") + " |\n")
		}
	}
	line := []string{"all system calls"}
	for _, side := range []string{"server", "client"} {
		for _, sp := range stages {
			line = append(line, fmt.Sprintf("**%.1f**", syscallPct(sideSummary(sp, side))))
		}
	}
	b.WriteString("| " + strings.Join(line, " | ") + " |\n\n")

	var runs []string
	for i, sp := range stages {
		m := sp.Meta
		qps, _ := formatValue(m.QPS, "k")
		runs = append(runs, fmt.Sprintf("%s %s calls/s, %.1f s of server CPU in %s samples and %.1f s of client CPU in %s",
			names[i], qps, sp.Server.CPUSeconds, fmtInt(uint64(sp.Server.Samples)), sp.Client.CPUSeconds, fmtInt(uint64(sp.Client.Samples))))
	}
	m := stages[0].Meta
	window := m.Duration
	if d, err := time.ParseDuration(m.Duration); err == nil {
		window = fmt.Sprintf("%g s", d.Seconds())
	}
	fmt.Fprintf(b, "_%d callers, %d B, %s measured: %s. Commit %s, %d cores._\n", m.Callers, m.PayloadBytes, window,
		strings.Join(runs, "; "), commitsOf(stages), m.Cores)
	return nil
}

// writeProfileHead writes the header of a top table: the rank and each
// stage's function left-aligned, the percentages right.
func writeProfileHead(b *strings.Builder, heads []string) {
	b.WriteString("| " + strings.Join(heads, " | ") + " |\n|")
	for i, h := range heads {
		if i == 0 || strings.HasSuffix(h, "%") {
			b.WriteString(" ---: |")
		} else {
			b.WriteString(" --- |")
		}
	}
	b.WriteString("\n")
}

// commitsOf names the commits of stages: one, or each in turn.
func commitsOf(stages []StageProfile) string {
	var cs []string
	for _, sp := range stages {
		if c := "`" + sp.Meta.Commit + "`"; !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	return strings.Join(cs, " and ")
}

func sideSummary(sp StageProfile, side string) cpuprof.Summary {
	if side == "client" {
		return sp.Client
	}
	return sp.Server
}

func categoryPct(s cpuprof.Summary, name string) float64 {
	for _, c := range s.Categories {
		if c.Category == name {
			return c.Pct
		}
	}
	return 0
}

func syscallPct(s cpuprof.Summary) float64 {
	var v float64
	for _, c := range s.Categories {
		if cpuprof.IsSyscallCategory(c.Category) {
			v += c.Pct
		}
	}
	return v
}

// profileTerm is the value of a term over the profiles.
func profileTerm(t string, ps map[string]StageProfile) (float64, error) {
	ref, field, ok := strings.Cut(t, ".")
	if !ok {
		return 0, fmt.Errorf("%q is neither a number nor a profile's value", t)
	}
	stage, side, hasSide := strings.Cut(ref, "/")
	sps, err := profileStages(ps, []string{stage})
	if err != nil {
		return 0, err
	}
	sp := sps[0]
	if !hasSide {
		switch field {
		case "qps":
			return sp.Meta.QPS, nil
		case "calls":
			return float64(sp.Meta.Calls), nil
		case "cores":
			return float64(sp.Meta.Cores), nil
		case "load":
			if len(sp.Meta.LoadBefore) == 0 {
				return 0, fmt.Errorf("%s: no load average", stage)
			}
			return sp.Meta.LoadBefore[0], nil
		}
		return 0, fmt.Errorf("%s: no value %q (qps, calls, cores, load)", stage, field)
	}
	if side != "server" && side != "client" {
		return 0, fmt.Errorf("%q: the side is server or client", ref)
	}
	s := sideSummary(sp, side)
	switch field {
	case "syscalls":
		return syscallPct(s), nil
	case "cpu":
		return s.CPUSeconds, nil
	case "samples":
		return float64(s.Samples), nil
	}
	for _, c := range cpuprof.Categories {
		if c.Key == field {
			return categoryPct(s, c.Name), nil
		}
	}
	return 0, fmt.Errorf("%s: no value %q", ref, field)
}
