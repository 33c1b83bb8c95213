package main

import (
	"fmt"
	"os"
	"time"

	"myrpc/benchmarks/internal/results"
)

// progress prints which step runs, how many there are and an estimate of
// the time left, on standard error. Cases come first, then bursts.
type progress struct {
	cases, bursts         int
	casesDone, burstsDone int
	// perCase is a case's warm-up plus measured time; overhead the mean
	// time a case took beyond it so far (server start and stop, dialling,
	// the callers' last calls).
	perCase, overhead time.Duration
	// burstTime is the mean time of a burst so far.
	burstTime time.Duration
	start     time.Time
}

func newProgress(cases, bursts int, perCase time.Duration) *progress {
	return &progress{cases: cases, bursts: bursts, perCase: perCase, overhead: time.Second, burstTime: 5 * time.Second}
}

// left estimates the time the steps not yet finished will take.
func (p *progress) left() time.Duration {
	return time.Duration(p.cases-p.casesDone)*(p.perCase+p.overhead) + time.Duration(p.bursts-p.burstsDone)*p.burstTime
}

func (p *progress) begin(label string) {
	p.start = time.Now()
	fmt.Fprintf(os.Stderr, "[%d/%d] %s ... ~%s left\n", p.casesDone+p.burstsDone+1, p.cases+p.bursts, label, fmtLeft(p.left()))
}

func (p *progress) end(r results.Row) {
	took := time.Since(p.start)
	status := fmt.Sprintf("%.0f QPS, p50 %.0f µs, p99 %.0f µs, %d errors", r.QPS, r.P50US, r.P99US, r.Errors)
	if r.Kind == results.KindBurst {
		p.burstTime = (p.burstTime*time.Duration(p.burstsDone) + took) / time.Duration(p.burstsDone+1)
		p.burstsDone++
		status = fmt.Sprintf("%d ok, %d errors, all done in %.2f s, p99 %.0f µs", r.Calls, r.Errors, r.WindowS, r.P99US)
	} else {
		over := max(took-p.perCase, 0)
		p.overhead = (p.overhead*time.Duration(p.casesDone) + over) / time.Duration(p.casesDone+1)
		p.casesDone++
	}
	if r.Failed {
		status = "FAILED: " + r.FailReason + " (" + status + ")"
	}
	fmt.Fprintf(os.Stderr, "        %s (took %s)\n", status, took.Round(10*time.Millisecond))
}

func fmtLeft(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Minute {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
