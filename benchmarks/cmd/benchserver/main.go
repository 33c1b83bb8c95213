// Command benchserver is the server side of every implementation the
// benchmarks compare, one per process:
//
//	benchserver -impl NAME -addr HOST:PORT [-cpu N] [-faults] [-delay D] [-cpuprofile FILE]
//
// It prints "READY <addr>" on standard output once it listens. On SIGTERM
// or SIGINT it stops, prints "STATS {json}" if the implementation counts its
// work (frames per write), and exits 0. It logs warnings and errors to
// standard error. benchall starts one for every case; the soak test starts
// one with -faults, whose stage server then also has a method that panics.
// With -cpuprofile it profiles its CPU from the moment it listens until the
// signal, and writes the profile before it stops: make profile.
package main

import (
	"os"

	"myrpc/benchmarks/internal/serverproc"
)

func main() {
	os.Exit(serverproc.Main(os.Args[1:], os.Stdout, os.Stderr))
}
