//go:build !linux

package runner

import "syscall"

// procAttr has nothing to set elsewhere than Linux.
func procAttr() *syscall.SysProcAttr { return nil }
