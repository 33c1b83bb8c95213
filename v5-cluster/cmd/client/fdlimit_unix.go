//go:build unix

package main

import "syscall"

// fdLimit returns how many files this process may open. (Go raises the
// soft limit to the hard one as a program starts.)
func fdLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return int(min(r.Cur, 1<<30))
}
