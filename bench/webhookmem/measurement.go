package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
)

// measurement is one attack on one webhook process.
type measurement struct {
	opt  options
	addr string
	pid  int
	log  *log.Logger

	idleRSS, maxRSS, hwm int64
	rss5s                int64  // VmRSS 5 s after the slow connections started
	aborted              string // why the attack was cut short, or ""

	opened, open              atomic.Int64 // slow connections
	answered                  sync.Map     // status line (or "closed") -> *atomic.Int64
	attackUp                  time.Duration
	sent, accepted            int
	otherStatus               map[string]int
	latencies                 []time.Duration
	validWindow, attackWindow time.Duration
}

// run warms the webhook up, opens the slow connections, sends valid
// deliveries for -hold while they stay open and while the webhook's memory
// is sampled, then closes everything. It returns an error only if the
// webhook never took load or ctx ended; an attack cut short is recorded in
// m.aborted.
func (m *measurement) run(ctx context.Context, hook *benchkit.Process) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	url := "http://" + m.addr + "/webhook"
	// Warm up: the first deliveries allocate the pools and connections.
	for i := range 20 {
		if status, _, err := deliver(ctx, client, url, int64(1_000_000+i)); err != nil || status != http.StatusAccepted {
			return fmt.Errorf("warm-up delivery: status %d, err %v", status, err)
		}
	}
	var err error
	if m.idleRSS, err = benchkit.ProcStatus(m.pid, "VmRSS"); err != nil {
		return err
	}
	m.log.Printf("webhook pid %d ready, VmRSS %d MiB; opening %d slow connections", m.pid, m.idleRSS/mib, m.opt.conns)

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		m.sample(actx, cancel, hook)
	}()
	var attackers sync.WaitGroup
	start := time.Now()
	for i := range m.opt.conns {
		attackers.Go(func() { m.attack(actx, i) })
	}
	for m.open.Load() < int64(m.opt.conns) && actx.Err() == nil && time.Since(start) < time.Minute {
		time.Sleep(10 * time.Millisecond)
	}
	m.attackUp = time.Since(start)
	m.log.Printf("%d slow connections open after %s; sending valid deliveries for %s", m.open.Load(), m.attackUp.Round(time.Millisecond), m.opt.hold)

	m.sendValid(actx, client, url)
	m.attackWindow = time.Since(start)
	if cause := context.Cause(actx); cause != nil && !errors.Is(cause, context.Canceled) {
		m.aborted = cause.Error()
	}
	cancel(nil)
	<-sampled
	if hwm, err := benchkit.ProcStatus(m.pid, "VmHWM"); err == nil {
		m.hwm = max(m.hwm, hwm)
	}
	attackers.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// sample records the webhook's largest VmRSS, and ends the attack if it
// passes the limit (killing the webhook) or the webhook exits.
func (m *measurement) sample(ctx context.Context, abort context.CancelCauseFunc, hook *benchkit.Process) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	for {
		rss, err := benchkit.ProcStatus(m.pid, "VmRSS")
		if err == nil {
			m.maxRSS = max(m.maxRSS, rss)
			if m.rss5s == 0 && time.Since(start) >= 5*time.Second {
				m.rss5s = rss
			}
			if hwm, err := benchkit.ProcStatus(m.pid, "VmHWM"); err == nil {
				m.hwm = max(m.hwm, hwm)
			}
		}
		switch {
		case hook.Exited():
			abort(fmt.Errorf("webhook exited: %s", hook.State()))
			return
		case rss > m.opt.rssLimit:
			m.log.Printf("webhook VmRSS %d MiB passed the %d MiB limit: killing it", rss/mib, m.opt.rssLimit/mib)
			abort(fmt.Errorf("killed at VmRSS %d MiB (limit %d MiB)", rss/mib, m.opt.rssLimit/mib)) // first, so that no answer is counted
			hook.Kill()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
