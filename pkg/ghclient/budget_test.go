package ghclient

import (
	"testing"
	"time"
)

func TestBudgetWait(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name      string
		known     bool
		remaining int
		reset     time.Time
		want      time.Duration
	}{
		{"unknown", false, 0, now.Add(time.Hour), 0},
		{"plenty left", true, 4000, now.Add(time.Hour), 0},
		{"low: spread until reset", true, 99, now.Add(100 * time.Second), time.Second},
		{"low: capped", true, 1, now.Add(time.Hour), maxPace},
		{"reset passed", true, 5, now.Add(-time.Second), 0},
	}
	for _, tt := range tests {
		b := &budget{known: tt.known, remaining: tt.remaining, reset: tt.reset}
		if got := b.wait(now, DefaultLowWater); got != tt.want {
			t.Errorf("%s: wait = %s, want %s", tt.name, got, tt.want)
		}
	}
}
