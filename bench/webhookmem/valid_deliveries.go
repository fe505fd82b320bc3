package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// sendValid sends valid deliveries one at a time, -interval apart, for
// -hold or until ctx ends, and records each answer and its latency.
func (m *measurement) sendValid(ctx context.Context, client *http.Client, url string) {
	m.otherStatus = map[string]int{}
	validStart := time.Now()
	for i := int64(0); time.Since(validStart) < m.opt.hold && ctx.Err() == nil; i++ {
		m.sent++
		status, took, err := deliver(ctx, client, url, 2_000_000+i)
		switch {
		case ctx.Err() != nil:
			m.otherStatus["unanswered"]++ // when the attack was cut short
			continue
		case err != nil:
			m.otherStatus[shortErr(err)]++
		case status == http.StatusAccepted:
			m.accepted++
			m.latencies = append(m.latencies, took)
		default:
			m.otherStatus[strconv.Itoa(status)]++
		}
		if m.opt.interval > 0 && !benchkit.Sleep(ctx, m.opt.interval) {
			break
		}
	}
	m.validWindow = time.Since(validStart)
}

// deliver sends one valid signed workflow_run delivery of run id.
func deliver(ctx context.Context, c *http.Client, url string, id int64) (int, time.Duration, error) {
	body, err := ghsim.WorkflowRunPayload(ghsim.RunPayload{InstallationID: 4242, RepoID: 777, Owner: "acme", Repo: "rocket", RunID: id, RunAttempt: 1})
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "workflow_run")
	req.Header.Set("X-GitHub-Delivery", "valid-"+strconv.FormatInt(id, 10))
	req.Header.Set("X-Hub-Signature-256", ghsim.Sign(secret, body))
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), err
}

// shortErr names an error for the "valid other" column.
func shortErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "error"
}
