//go:build !linux

package testserver

import "syscall"

// procAttr puts a server in its own process group, so that a ^C to the test
// does not reach it first; Cleanup decides when it ends.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
