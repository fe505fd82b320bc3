package ghclient

import (
	"context"
	"sync"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// DefaultLowWater is the remaining primary rate-limit budget below which
// requests are spread evenly until the reset, instead of spending the rest
// of the hour's budget in a burst and then stalling every worker.
const DefaultLowWater = 200

// maxPace caps one pacing wait; the job's heartbeats keep running meanwhile.
const maxPace = 30 * time.Second

// budget tracks the installation's primary rate limit from the
// X-RateLimit-Remaining and X-RateLimit-Reset headers of its responses.
type budget struct {
	mu        sync.Mutex
	known     bool
	remaining int
	reset     time.Time
}

func (b *budget) set(remaining int, reset time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.known, b.remaining, b.reset = true, remaining, reset
}

// wait returns how long to wait before the next request: zero while the
// budget is above lowWater, else the time to the reset divided by the
// requests left, so the remainder lasts until the reset.
func (b *budget) wait(now time.Time, lowWater int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.known || b.remaining >= lowWater || !b.reset.After(now) {
		return 0
	}
	return min(b.reset.Sub(now)/time.Duration(b.remaining+1), maxPace)
}

// pace slows requests down when the budget runs low.
func (c *Client) pace(ctx context.Context) error {
	d := c.budget.wait(time.Now(), c.lowWater)
	if d <= 0 {
		return nil
	}
	if c.metrics != nil {
		c.metrics.paced.Inc()
	}
	c.log.Debug("github budget low, pacing requests", "installation_id", c.installationID, "wait", d)
	return archive.Sleep(ctx, d)
}
