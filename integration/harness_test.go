//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
)

// harness drives one stack: it sends signed deliveries (and remembers every
// answer, for the metric checks), waits for the archive, and checks the
// invariants.
type harness struct {
	t     *testing.T
	s     Stack
	sim   *SimClient
	cfg   StackConfig
	state ghsim.State // as loaded, with the assigned ids
	hc    *http.Client

	mu       sync.Mutex
	sent     []sentDelivery
	payloads map[runAttempt][]byte
}

// runAttempt names one attempt of a run.
type runAttempt struct {
	RunID   int64
	Attempt int
}

// attemptOf returns run as its attempt n: what the delivery of that attempt
// names (a run with Attempt N was re-run N-1 times, and each attempt has a
// delivery and a manifest of its own).
func attemptOf(run ghsim.Run, n int) ghsim.Run {
	run.Attempt = n
	return run
}

// sentDelivery is one POST to the webhook and its answer.
type sentDelivery struct {
	DeliveryID string
	RunID      int64
	Status     int // 0: no answer (transport error)
	Duplicate  bool
}

func newHarness(t *testing.T, s Stack, cfg StackConfig) *harness {
	h := &harness{
		t:        t,
		s:        s,
		sim:      s.Sim(),
		cfg:      cfg,
		hc:       &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32}, Timeout: 20 * time.Second},
		payloads: map[runAttempt][]byte{},
	}
	h.state = h.sim.State()
	h.preparePayloads(h.state.Runs)
	return h
}

// webhookSecret signs every delivery; both modes configure the webhook
// with it.
var webhookSecret = sync.OnceValue(func() string { return "whsec-" + rand.Text() })

// runs returns the runs of the scenario, by increasing id.
func (h *harness) runs() []ghsim.Run { return h.state.Runs }

// artifacts returns the artifacts of a run, as the simulator holds them now
// (deleted ones included).
func (h *harness) artifacts(st ghsim.State, runID int64) []ghsim.Artifact {
	var out []ghsim.Artifact
	for _, a := range st.Artifacts {
		if a.RunID == runID {
			out = append(out, a)
		}
	}
	return out
}

// installationOf returns the App installation of a run's repository.
func (h *harness) installationOf(run ghsim.Run) int64 {
	for _, r := range h.state.Repos {
		if r.ID == run.RepoID {
			return r.InstallationID
		}
	}
	h.t.Fatalf("run %d: unknown repository %d", run.ID, run.RepoID)
	return 0
}

// newDeliveryID returns a fresh X-GitHub-Delivery (a GUID, as GitHub's).
func newDeliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// deliver POSTs run's workflow_run "completed" delivery, signed, with
// deliveryID (and hookID in X-GitHub-Hook-ID), and returns the status (0 if
// the request failed) and whether JetStream called it a duplicate. It is
// safe for concurrent use.
func (h *harness) deliver(run ghsim.Run, deliveryID, hookID string) (int, bool) {
	h.mu.Lock()
	body, ok := h.payloads[runAttempt{run.ID, run.Attempt}]
	h.mu.Unlock()
	if !ok {
		h.t.Errorf("run %d attempt %d: no payload prepared (call preparePayloads from the test goroutine)", run.ID, run.Attempt)
		return 0, false
	}
	req, err := http.NewRequestWithContext(h.t.Context(), http.MethodPost, h.s.WebhookURL(), bytes.NewReader(body))
	if err != nil {
		h.t.Error(err)
		return 0, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/integration")
	req.Header.Set(webhook.HeaderEvent, webhook.EventWorkflowRun)
	req.Header.Set(webhook.HeaderDelivery, deliveryID)
	req.Header.Set(webhook.HeaderHookID, hookID)
	req.Header.Set("X-GitHub-Hook-Installation-Target-ID", strconv.Itoa(appID))
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	req.Header.Set("X-Hub-Signature-256", ghsim.Sign(webhookSecret(), body))
	d := sentDelivery{DeliveryID: deliveryID, RunID: run.ID}
	resp, err := h.hc.Do(req)
	if err == nil {
		var acc webhook.Accepted
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		d.Status = resp.StatusCode
		if resp.StatusCode == http.StatusAccepted {
			if err := json.Unmarshal(b, &acc); err != nil {
				h.t.Errorf("202 body %q: %v", b, err)
			}
			d.Duplicate = acc.Duplicate
		}
	}
	h.mu.Lock()
	h.sent = append(h.sent, d)
	h.mu.Unlock()
	return d.Status, d.Duplicate
}

// deliverUntilAccepted delivers run with delivery id id (a fresh one when
// empty), redelivering it with the same id, as an operator or a reconciler
// does on GitHub, until the webhook answers 202. It returns the number of
// attempts.
func (h *harness) deliverUntilAccepted(run ghsim.Run, id string, timeout time.Duration) int {
	h.t.Helper()
	if id == "" {
		id = newDeliveryID()
	}
	deadline := time.Now().Add(timeout)
	for n := 1; ; n++ {
		status, _ := h.deliver(run, id, "1001")
		if status == http.StatusAccepted {
			return n
		}
		if status != http.StatusServiceUnavailable && status != 0 {
			h.t.Fatalf("run %d delivery %s: status %d, want 202 or 503", run.ID, id, status)
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %d delivery %s: not accepted after %d attempts in %s (last status %d)", run.ID, id, n, timeout, status)
		}
		sleepCtx(h.t.Context(), 500*time.Millisecond)
	}
}

// deliverAll delivers every run with parallel concurrent senders, each
// delivery redelivered (same id) until accepted or timeout. It may run in
// any goroutine: it reports failures as an error.
func (h *harness) deliverAll(runs []ghsim.Run, parallel int, timeout time.Duration) error {
	work := make(chan ghsim.Run)
	errs := make(chan error, len(runs))
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for run := range work {
				id := newDeliveryID()
				deadline := time.Now().Add(timeout)
				for {
					status, _ := h.deliver(run, id, "1001")
					if status == http.StatusAccepted {
						break
					}
					if h.t.Context().Err() != nil || time.Now().After(deadline) || (status != http.StatusServiceUnavailable && status != 0) {
						errs <- fmt.Errorf("run %d: last status %d", run.ID, status)
						break
					}
					sleepCtx(h.t.Context(), 500*time.Millisecond)
				}
			}
		})
	}
	for _, r := range runs {
		work <- r
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		return fmt.Errorf("%d of %d deliveries not accepted: %w", len(all), len(runs), errors.Join(head(all, 5)...))
	}
	return nil
}

// preparePayloads fetches the delivery bodies of runs (each of the
// attempt it names) from the simulator, so that deliveries from other
// goroutines need not.
func (h *harness) preparePayloads(runs []ghsim.Run) {
	h.t.Helper()
	for _, r := range runs {
		k := runAttempt{r.ID, r.Attempt}
		h.mu.Lock()
		_, ok := h.payloads[k]
		h.mu.Unlock()
		if ok {
			continue
		}
		body := h.sim.Payload(r, h.installationOf(r))
		h.mu.Lock()
		h.payloads[k] = body
		h.mu.Unlock()
	}
}

// webhookReady returns the status of the webhook's /readyz.
func (h *harness) webhookReady() int {
	h.t.Helper()
	resp, err := scrapeClient.Get(strings.TrimSuffix(h.s.WebhookMetricsURL(), "/metrics") + "/readyz")
	if err != nil {
		h.t.Fatalf("webhook /readyz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// deliveries returns a copy of every delivery sent so far.
func (h *harness) deliveries() []sentDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sentDelivery(nil), h.sent...)
}

// manifestKey is the full S3 key of a run attempt's manifest.
func manifestKey(run ghsim.Run) string {
	return prefix + "/" + archive.Layout{Owner: run.Owner, Repo: run.Repo, RunID: run.ID}.ManifestKey(run.Attempt)
}

// object is one listed object.
type object struct {
	Size     int64
	Modified time.Time
}

// listKeys lists every object under the archive prefix.
func listKeys(ctx context.Context, c *s3.Client) (map[string]object, error) {
	keys := map[string]object{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			keys[aws.ToString(o.Key)] = object{Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}
		}
	}
	return keys, nil
}

// waitManifests waits until every run has its manifest in S3. S3 errors
// (MinIO down) are retried until the deadline.
func (h *harness) waitManifests(runs []ghsim.Run, timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	var missing []int64
	var lastErr error
	for {
		keys, err := listKeys(h.t.Context(), h.s.S3())
		lastErr = err
		if err == nil {
			missing = missing[:0]
			for _, r := range runs {
				if _, ok := keys[manifestKey(r)]; !ok {
					missing = append(missing, r.ID)
				}
			}
			if len(missing) == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("after %s, %d of %d runs have no manifest (first: %v); last S3 error: %v", timeout, len(missing), len(runs), head(missing, 5), lastErr)
		}
		sleepCtx(h.t.Context(), 250*time.Millisecond)
	}
}

// countManifests returns how many of runs have their manifest now (0 on an
// S3 error).
func (h *harness) countManifests(runs []ghsim.Run) int {
	keys, err := listKeys(h.t.Context(), h.s.S3())
	if err != nil {
		return 0
	}
	n := 0
	for _, r := range runs {
		if _, ok := keys[manifestKey(r)]; ok {
			n++
		}
	}
	return n
}

// queueState is the run stream and worker consumer as JetStream reports
// them.
type queueState struct {
	StreamMsgs, LastSeq     uint64 // messages in the run stream, last sequence
	Pending, AckPending     uint64 // of the worker consumer
	DLQRecords, DLQAdvisory int    // dead-letter records and captured advisories
	DLQKinds                []string
	DLQ                     []deadLetter // the records, in stream order
	// Delivered counts every delivery of the consumer, redeliveries
	// included (its last delivered consumer sequence).
	Delivered uint64
}

// deadLetter is one record of the dead-letter stream.
type deadLetter struct {
	RunID       int64
	Attempt     int
	Kind, Error string // events.HeaderErrorKind, events.HeaderError
	Deliveries  string // events.HeaderDeliveries
}

// queue reads the run stream, the consumer and the dead-letter stream.
func (h *harness) queue(ctx context.Context) (queueState, error) {
	nc, err := nats.Connect(h.s.NATSURL(), nats.Name("integration-test"), nats.Timeout(5*time.Second))
	if err != nil {
		return queueState{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return queueState{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var q queueState
	st, err := js.Stream(ctx, events.DefaultStream)
	if err != nil {
		return q, fmt.Errorf("stream %s: %w", events.DefaultStream, err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		return q, err
	}
	q.StreamMsgs, q.LastSeq = si.State.Msgs, si.State.LastSeq
	cons, err := st.Consumer(ctx, events.DefaultConsumer)
	if err != nil {
		return q, fmt.Errorf("consumer %s: %w", events.DefaultConsumer, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return q, err
	}
	q.Pending, q.AckPending = ci.NumPending, uint64(ci.NumAckPending)
	q.Delivered = ci.Delivered.Consumer
	dlq, err := js.Stream(ctx, events.DefaultDeadLetter)
	if err != nil {
		return q, fmt.Errorf("stream %s: %w", events.DefaultDeadLetter, err)
	}
	di, err := dlq.Info(ctx)
	if err != nil {
		return q, err
	}
	for seq := di.State.FirstSeq; di.State.Msgs > 0 && seq <= di.State.LastSeq; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return q, err
		}
		if strings.HasPrefix(m.Subject, "$JS.EVENT.ADVISORY.") {
			q.DLQAdvisory++
			continue
		}
		q.DLQRecords++
		q.DLQKinds = append(q.DLQKinds, m.Header.Get(events.HeaderErrorKind)+": "+m.Header.Get(events.HeaderError))
		dl := deadLetter{
			Kind:       m.Header.Get(events.HeaderErrorKind),
			Error:      m.Header.Get(events.HeaderError),
			Deliveries: m.Header.Get(events.HeaderDeliveries),
		}
		if ev, err := runevent.DecodeRunCompleted(m.Data); err == nil {
			dl.RunID, dl.Attempt = ev.WorkflowRun.ID, ev.WorkflowRun.RunAttempt
		}
		q.DLQ = append(q.DLQ, dl)
	}
	return q, nil
}

// waitIdle waits until the run stream is empty and the consumer has
// nothing pending or unacknowledged: every event was settled.
func (h *harness) waitIdle(timeout time.Duration) queueState {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		q, err := h.queue(h.t.Context())
		if err == nil && q.StreamMsgs == 0 && q.Pending == 0 && q.AckPending == 0 {
			return q
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("queue not idle after %s: %+v (err %v)", timeout, q, err)
		}
		sleepCtx(h.t.Context(), 250*time.Millisecond)
	}
}

// waitWorkersIdle waits until no live worker has a job in flight: a
// worker whose run was redelivered elsewhere may still be working on it
// (and settle it late) after the queue is idle.
func (h *harness) waitWorkersIdle(timeout time.Duration) {
	h.t.Helper()
	h.eventually(timeout, "every worker to finish its jobs", func() bool {
		for _, w := range h.s.Workers() {
			if !w.Alive() {
				continue
			}
			m, err := scrape(w.MetricsURL())
			if err != nil || m.Get("archiver_jobs_in_flight") != 0 {
				return false
			}
		}
		return true
	})
}

// eventually polls cond every 100 ms until it holds, failing the test
// after timeout.
func (h *harness) eventually(timeout time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		sleepCtx(h.t.Context(), 100*time.Millisecond)
	}
}

// workerMetrics returns every worker's metrics: a fresh scrape of the live
// ones, the last scrape of killed ones.
func (h *harness) workerMetrics() map[string]Metrics {
	h.t.Helper()
	out := map[string]Metrics{}
	for _, w := range h.s.Workers() {
		if !w.Alive() {
			out[w.Name()] = w.LastMetrics()
			continue
		}
		m, err := scrape(w.MetricsURL())
		if err != nil {
			h.t.Fatalf("%s: %v", w.Name(), err)
		}
		out[w.Name()] = m
	}
	return out
}

// sumMetric adds one series over every worker.
func sumMetric(all map[string]Metrics, name string, labels ...string) float64 {
	var s float64
	for _, m := range all {
		s += m.Get(name, labels...)
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func head[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}
