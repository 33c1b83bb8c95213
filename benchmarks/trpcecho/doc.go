// Package trpcecho is the Echo service for trpc-go, generated from
// trpcecho.proto by trpc-cmdline in its stub-only mode (make proto). It
// carries myrpc's own EchoRequest and EchoReply messages, so trpc-go and the
// myrpc stages send the same message bytes in the benchmarks.
package trpcecho
