package kmstest

import "syscall"

// childAttr makes the kernel kill local-kms if the test binary dies before
// its cleanup runs (a panic or a test timeout).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
