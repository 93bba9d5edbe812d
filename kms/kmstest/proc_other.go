//go:build !linux

package kmstest

import "syscall"

// childAttr has no parent-death signal outside Linux; cleanup stops the server.
func childAttr() *syscall.SysProcAttr { return nil }
