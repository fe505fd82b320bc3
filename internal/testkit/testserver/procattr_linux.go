package testserver

import "syscall"

// procAttr puts a server in its own process group (a ^C to the test does not
// reach it first; Cleanup decides when it ends) and has the kernel kill it
// if the test binary dies without running Cleanup (a timeout panic), so that
// no server outlives its test.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
