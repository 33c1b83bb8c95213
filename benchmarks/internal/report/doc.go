// Package report turns benchmark rows into what people read: results.md
// (the tables, with each row's QPS as a ratio to the baselines'), the chart
// (QPS and p99 against callers, one line per implementation), and the docs
// page docs/benchmarks.md. Everything is computed from the rows, so the
// pages can be made again from a results.json.
package report
