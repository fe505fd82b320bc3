package testserver

import (
	"testing"
	"time"
)

// Eventually checks cond every 20 ms until it holds, and fails the test
// naming what it waited for if it still does not hold after within. Tests
// wait on conditions with it instead of sleeping for a fixed time.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			if cond() {
				return
			}
			t.Fatalf("timed out after %s waiting for %s", within, what)
		case <-tick.C:
		}
	}
}
