package soak

import "syscall"

// procAttr makes the kernel kill a bench server if the soak dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
