package webhook

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

func TestHandlerPublishesCompletedRun(t *testing.T) {
	t.Parallel()
	e := setup(t)
	created := time.Date(2026, 5, 4, 3, 0, 0, 0, time.UTC)
	body := runPayload(t, ghsim.RunPayload{
		InstallationID: 4242, RepoID: 777, Owner: "acme", Repo: "rocket", Private: true,
		RunID: 123456789, RunAttempt: 2, WorkflowName: "ci", WorkflowPath: ".github/workflows/ci.yml",
		Event: "push", HeadBranch: "main", HeadSHA: "deadbeef", Conclusion: "failure",
		CreatedAt: created, UpdatedAt: created.Add(90 * time.Second),
	})
	a := e.post(t, signed(EventWorkflowRun, "d-1", body)).accepted(t)
	if a.Status != "accepted" || a.DeliveryID != "d-1" || a.Stream != events.DefaultStream || a.Sequence != 1 || a.Duplicate {
		t.Fatalf("202 body = %+v", a)
	}

	// The message is really in the stream, with the contract's subject,
	// headers and event.
	if n := e.streamMsgs(t); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
	msg := e.getMsg(t, a.Sequence)
	if want := "archiver.runs.4242.777"; msg.Subject != want {
		t.Errorf("subject %q, want %q", msg.Subject, want)
	}
	if got := msg.Header.Get("Nats-Msg-Id"); got != "wr:123456789:2" {
		t.Errorf("Nats-Msg-Id %q, want wr:123456789:2", got)
	}
	if got := msg.Header.Get(events.HeaderDelivery); got != "d-1" {
		t.Errorf("%s header %q, want d-1", events.HeaderDelivery, got)
	}
	if len(msg.Data) > 1024 {
		t.Errorf("published %d bytes: the compact event, not the %d-byte body, must be published", len(msg.Data), len(body))
	}
	ev, err := runevent.DecodeRunCompleted(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	want := runevent.RunCompleted{
		SchemaVersion: runevent.SchemaVersion, Source: runevent.SourceWebhook, DeliveryID: "d-1",
		ReceivedAt: e.now, InstallationID: 4242,
		Repository: runevent.Repository{ID: 777, Owner: "acme", Name: "rocket", FullName: "acme/rocket", Private: true},
		WorkflowRun: runevent.WorkflowRun{
			ID: 123456789, RunAttempt: 2, WorkflowID: 2823525, Name: "ci", Path: ".github/workflows/ci.yml",
			Event: "push", HeadBranch: "main", HeadSHA: "deadbeef", Conclusion: "failure", Status: "completed",
			CreatedAt: created, UpdatedAt: created.Add(90 * time.Second),
			HTMLURL: "https://github.com/acme/rocket/actions/runs/123456789",
		},
		WorkflowName: "ci",
	}
	if !reflect.DeepEqual(*ev, want) {
		t.Errorf("event\n got %+v\nwant %+v", *ev, want)
	}

	if v := metric(t, e.reg, "archiver_webhook_deliveries_total", "event", "workflow_run", "outcome", "accepted"); v != 1 {
		t.Errorf("accepted deliveries = %v, want 1", v)
	}
	if v := metric(t, e.reg, "archiver_webhook_publish_duration_seconds", "result", "ok"); v != 1 {
		t.Errorf("publish latency samples = %v, want 1", v)
	}
	if v := metric(t, e.reg, "archiver_webhook_body_size_bytes"); v != 1 {
		t.Errorf("body size samples = %v, want 1", v)
	}
	logs := e.logs.String()
	for _, s := range []string{`"delivery_id":"d-1"`, `"repo":"acme/rocket"`, `"run_id":123456789`, `"event":"workflow_run"`} {
		if !strings.Contains(logs, s) {
			t.Errorf("logs lack %s:\n%s", s, logs)
		}
	}
}

func TestHandlerRepositoryHookWithoutInstallation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.post(t, signed(EventWorkflowRun, "d-repo", sample(t, "workflow_run.completed.payload.json"))).accepted(t)
	msg := e.getMsg(t, a.Sequence)
	if want := "archiver.runs.0.300029405"; msg.Subject != want {
		t.Errorf("subject %q, want %q", msg.Subject, want)
	}
	if got := msg.Header.Get("Nats-Msg-Id"); got != "wr:289782451:1" {
		t.Errorf("Nats-Msg-Id %q", got)
	}
}

func TestHandlerDuplicates(t *testing.T) {
	t.Parallel()
	e := setup(t)
	body := runPayload(t, ghsim.RunPayload{RunID: 1001, RunAttempt: 1})

	// GitHub redelivers with the same delivery id.
	first := e.post(t, signed(EventWorkflowRun, "same", body)).accepted(t)
	again := e.post(t, signed(EventWorkflowRun, "same", body)).accepted(t)
	if first.Duplicate || !again.Duplicate {
		t.Fatalf("duplicate flags: first %v, redelivery %v", first.Duplicate, again.Duplicate)
	}
	if again.Sequence != first.Sequence {
		t.Errorf("redelivery sequence %d, want the original %d", again.Sequence, first.Sequence)
	}
	// A second hook delivers the same run attempt under another id.
	other := e.post(t, signed(EventWorkflowRun, "other-hook", body)).accepted(t)
	if !other.Duplicate {
		t.Errorf("same run attempt from another delivery: duplicate = false")
	}
	if n := e.streamMsgs(t); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
	// A re-run (next attempt) is a new job.
	rerun := e.post(t, signed(EventWorkflowRun, "rerun", runPayload(t, ghsim.RunPayload{RunID: 1001, RunAttempt: 2}))).accepted(t)
	if rerun.Duplicate || e.streamMsgs(t) != 2 {
		t.Errorf("attempt 2: duplicate=%v, stream holds %d, want a second message", rerun.Duplicate, e.streamMsgs(t))
	}
	if v := metric(t, e.reg, "archiver_webhook_deliveries_total", "event", "workflow_run", "outcome", "duplicate"); v != 2 {
		t.Errorf("duplicate deliveries = %v, want 2", v)
	}
}

func TestHandlerFormEncoded(t *testing.T) {
	t.Parallel()
	e := setup(t)
	payload := runPayload(t, ghsim.RunPayload{RunID: 2002, RunAttempt: 1})
	form := []byte(url.Values{"payload": {string(payload)}}.Encode())
	d := testDelivery{event: EventWorkflowRun, id: "form-1", body: form, contentType: "application/x-www-form-urlencoded"}
	a := e.post(t, d).accepted(t)
	ev, err := runevent.DecodeRunCompleted(e.getMsg(t, a.Sequence).Data)
	if err != nil {
		t.Fatal(err)
	}
	if ev.WorkflowRun.ID != 2002 || ev.Repository.FullName != "acme/rocket" || ev.DeliveryID != "form-1" {
		t.Errorf("event from form body: %+v", ev)
	}
	// The signature covers the raw form body, not the payload inside it.
	d.signature = ghsim.Sign(testSecret, payload)
	if r := e.post(t, d); r.status != http.StatusUnauthorized {
		t.Errorf("form body signed over the inner payload: status %d, want 401", r.status)
	}
}

// TestHandlerRefusesAndIgnores covers every answer that stores nothing.
func TestHandlerRefusesAndIgnores(t *testing.T) {
	t.Parallel()
	e := setup(t, func(_ *events.Topology, o *HandlerOptions) {
		o.MaxBodyBytes = 64 << 10
		o.Filter = Filter{ReposDeny: []string{"acme/secret-*"}, Conclusions: []string{"success", "failure"}}
	})
	good := runPayload(t, ghsim.RunPayload{RunID: 3003, RunAttempt: 1})
	tampered := bytes.Replace(good, []byte(`"run_attempt":1`), []byte(`"run_attempt":9`), 1)
	if bytes.Equal(tampered, good) {
		t.Fatal("tamper did not change the body")
	}
	huge := append(bytes.Repeat([]byte(" "), 64<<10), good...)
	tests := []struct {
		name       string
		d          testDelivery
		status     int
		respStatus string
		reason     string // substring of the response reason
		outcome    string
		event      string // metric label
	}{
		{name: "wrong secret", d: withSig(signed(EventWorkflowRun, "x", good), ghsim.Sign("old-secret", good)),
			status: 401, respStatus: "error", reason: "Unauthorized", outcome: OutcomeUnauthorized},
		{name: "missing signature", d: withSig(signed(EventWorkflowRun, "x", good), "-"),
			status: 401, respStatus: "error", reason: "Unauthorized", outcome: OutcomeUnauthorized},
		{name: "sha1 signature only", d: withHeader(withSig(signed(EventWorkflowRun, "x", good), "-"), "X-Hub-Signature", "sha1=0123456789abcdef0123456789abcdef01234567"),
			status: 401, respStatus: "error", reason: "Unauthorized", outcome: OutcomeUnauthorized},
		{name: "tampered body", d: withSig(signed(EventWorkflowRun, "x", tampered), ghsim.Sign(testSecret, good)),
			status: 401, respStatus: "error", reason: "Unauthorized", outcome: OutcomeUnauthorized},
		{name: "malformed signature", d: withSig(signed(EventWorkflowRun, "x", good), "sha256=zz"),
			status: 401, respStatus: "error", reason: "Unauthorized", outcome: OutcomeUnauthorized},
		{name: "malformed JSON", d: signed(EventWorkflowRun, "x", good[:len(good)-3]),
			status: 400, respStatus: "error", reason: "bad payload", outcome: OutcomeBadRequest},
		{name: "completed run without id", d: signed(EventWorkflowRun, "x", []byte(`{"action":"completed","repository":{"id":1,"name":"r","owner":{"login":"o"}},"workflow_run":{"run_attempt":1}}`)),
			status: 400, respStatus: "error", reason: "workflow_run.id", outcome: OutcomeBadRequest},
		{name: "completed run without repository", d: signed(EventWorkflowRun, "x", []byte(`{"action":"completed","workflow_run":{"id":5,"run_attempt":1}}`)),
			status: 400, respStatus: "error", reason: "repository", outcome: OutcomeBadRequest},
		{name: "wrong field type", d: signed(EventWorkflowRun, "x", []byte(`{"action":"completed","workflow_run":{"id":"5"}}`)),
			status: 400, respStatus: "error", reason: "workflow_run.id", outcome: OutcomeBadRequest},
		{name: "form without payload", d: testDelivery{event: EventWorkflowRun, id: "x", body: []byte("other=1"), contentType: "application/x-www-form-urlencoded"},
			status: 400, respStatus: "error", reason: "payload", outcome: OutcomeBadRequest},
		{name: "no event header", d: signed("", "x", good),
			status: 400, respStatus: "error", reason: HeaderEvent, outcome: OutcomeBadRequest, event: eventMissing},
		{name: "body too large", d: signed(EventWorkflowRun, "x", huge),
			status: 413, respStatus: "error", reason: "exceeds", outcome: OutcomeTooLarge},
		{name: "unsupported content type", d: testDelivery{event: EventWorkflowRun, id: "x", body: good, contentType: "text/plain"},
			status: 415, respStatus: "error", reason: "text/plain", outcome: OutcomeMediaType},
		{name: "ping", d: signed(EventPing, "x", sample(t, "ping.payload.json")),
			status: 200, respStatus: "pong", outcome: OutcomePing, event: EventPing},
		{name: "unsigned ping", d: withSig(signed(EventPing, "x", sample(t, "ping.payload.json")), "-"),
			status: 401, respStatus: "error", reason: "Unauthorized", outcome: OutcomeUnauthorized, event: EventPing},
		{name: "other event", d: signed("push", "x", []byte(`{"ref":"refs/heads/main"}`)),
			status: 200, respStatus: "ignored", reason: `event "push"`, outcome: OutcomeIgnored, event: eventOther},
		{name: "requested action", d: signed(EventWorkflowRun, "x", sample(t, "workflow_run.requested.payload.json")),
			status: 200, respStatus: "ignored", reason: `action "requested"`, outcome: OutcomeIgnored},
		{name: "denied repository", d: signed(EventWorkflowRun, "x", runPayload(t, ghsim.RunPayload{Owner: "ACME", Repo: "secret-sauce", RunID: 4004})),
			status: 200, respStatus: "ignored", reason: ReasonRepoDenied, outcome: OutcomeIgnored},
		{name: "filtered conclusion", d: signed(EventWorkflowRun, "x", runPayload(t, ghsim.RunPayload{RunID: 4005, Conclusion: "cancelled"})),
			status: 200, respStatus: "ignored", reason: ReasonConclusion, outcome: OutcomeIgnored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			label := cmp.Or(tt.event, tt.d.event, EventWorkflowRun)
			before := metric(t, e.reg, "archiver_webhook_deliveries_total", "event", label, "outcome", tt.outcome)
			r := e.post(t, tt.d)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tt.status, r.body)
			}
			resp := r.response(t)
			if resp.Status != tt.respStatus || !strings.Contains(resp.Reason, tt.reason) {
				t.Errorf("response %+v, want status %q and reason containing %q", resp, tt.respStatus, tt.reason)
			}
			if tt.status == 401 && resp.Reason != "Unauthorized" {
				t.Errorf("401 leaks detail: %q", resp.Reason)
			}
			if after := metric(t, e.reg, "archiver_webhook_deliveries_total", "event", label, "outcome", tt.outcome); after != before+1 {
				t.Errorf("deliveries{event=%s,outcome=%s} went %v -> %v, want +1", label, tt.outcome, before, after)
			}
			if n := e.streamMsgs(t); n != 0 {
				t.Fatalf("stream holds %d messages, want none", n)
			}
		})
	}
	// Bad input is counted by kind, and the handler keeps serving.
	for reason, want := range map[string]float64{signatureMismatch: 2, signatureMissing: 3, signatureMalformed: 1} {
		if v := metric(t, e.reg, "archiver_webhook_signature_failures_total", "reason", reason); v != want {
			t.Errorf("signature failures{reason=%s} = %v, want %v", reason, v, want)
		}
	}
	for reason, want := range map[string]float64{ReasonEvent: 1, ReasonAction: 1, ReasonRepoDenied: 1, ReasonConclusion: 1} {
		if v := metric(t, e.reg, "archiver_webhook_ignored_total", "reason", reason); v != want {
			t.Errorf("ignored{reason=%s} = %v, want %v", reason, v, want)
		}
	}
	e.post(t, signed(EventWorkflowRun, "after-bad-input", good)).accepted(t)
	// Neither the secret nor the body reaches the logs.
	logs := e.logs.String()
	for _, leak := range []string{testSecret, "avatar_url", ghsim.Sign(testSecret, good)} {
		if strings.Contains(logs, leak) {
			t.Errorf("logs contain %q", leak)
		}
	}
}

func TestHandlerTooLargeWithoutContentLength(t *testing.T) {
	t.Parallel()
	e := setup(t, func(_ *events.Topology, o *HandlerOptions) { o.MaxBodyBytes = 1024 })
	body := runPayload(t, ghsim.RunPayload{RunID: 5005})
	// A chunked body has no Content-Length: MaxBytesReader stops the read.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/webhook", io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderEvent, EventWorkflowRun)
	req.Header.Set(SignatureHeader, ghsim.Sign(testSecret, body))
	if req.ContentLength > 0 {
		t.Fatalf("request has Content-Length %d; the test needs a chunked body", req.ContentLength)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

func TestHandlerNATSDownIs503ThenRedeliverySucceeds(t *testing.T) {
	t.Parallel()
	const timeout = 1500 * time.Millisecond
	e := setup(t, func(_ *events.Topology, o *HandlerOptions) { o.PublishTimeout = timeout })
	port := natsPort(e.ns)
	e.ns.Shutdown()
	e.ns.WaitForShutdown()

	body := runPayload(t, ghsim.RunPayload{RunID: 6006, RunAttempt: 1})
	r := e.post(t, signed(EventWorkflowRun, "during-outage", body))
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d with NATS down, want 503; body %s", r.status, r.body)
	}
	if r.took > timeout+500*time.Millisecond {
		t.Errorf("503 took %s, want within the publish timeout %s", r.took, timeout)
	}
	if v := metric(t, e.reg, "archiver_webhook_deliveries_total", "event", "workflow_run", "outcome", OutcomeUnavailable); v != 1 {
		t.Errorf("unavailable deliveries = %v, want 1", v)
	}
	if v := metric(t, e.reg, "archiver_webhook_publish_duration_seconds", "result", "error"); v != 1 {
		t.Errorf("failed publish samples = %v, want 1", v)
	}

	// NATS comes back with the same store: the redelivery is stored.
	startNATS(t, e.storeDir, port)
	testserver.Eventually(t, 10*time.Second, "the client to reconnect", e.nc.IsConnected)
	a := e.post(t, signed(EventWorkflowRun, "during-outage", body)).accepted(t)
	if a.Duplicate {
		t.Error("redelivery after a 503 reported duplicate: the failed delivery was stored after all")
	}
	if n := e.streamMsgs(t); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestHandlerStreamFullIs503(t *testing.T) {
	t.Parallel()
	e := setup(t, func(topo *events.Topology, _ *HandlerOptions) { topo.MaxBytes = 1500 })
	e.post(t, signed(EventWorkflowRun, "fits", runPayload(t, ghsim.RunPayload{RunID: 7001}))).accepted(t)
	var last result
	for i := range 5 { // the stream fills after one or two ~700-byte events
		last = e.post(t, signed(EventWorkflowRun, "overflow", runPayload(t, ghsim.RunPayload{RunID: 7002 + int64(i)})))
		if last.status != http.StatusAccepted {
			break
		}
	}
	if last.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d once the stream is full, want 503; body %s", last.status, last.body)
	}
}

// TestHandlerSlowPublisherIs503 uses a publisher that never acknowledges.
func TestHandlerSlowPublisherIs503(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{block: true}
	const timeout = 300 * time.Millisecond
	h := NewHandler(pub, HandlerOptions{Secrets: NewSecrets(testSecret), PublishTimeout: timeout})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r := post(t, srv.URL, signed(EventWorkflowRun, "slow", runPayload(t, ghsim.RunPayload{RunID: 8008})))
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", r.status)
	}
	if r.took < timeout || r.took > timeout+2*time.Second {
		t.Errorf("503 after %s, want just after the %s publish timeout", r.took, timeout)
	}
	if !pub.deadline.Load() {
		t.Error("publish context had no deadline")
	}
}

func TestHandlerMethodNotAllowed(t *testing.T) {
	t.Parallel()
	h := NewHandler(&fakePublisher{}, HandlerOptions{Secrets: NewSecrets(testSecret)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/webhook", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
		t.Fatalf("GET: status %d Allow %q, want 405 POST", rec.Code, rec.Header().Get("Allow"))
	}
}

// TestHandlerSecretRotation accepts deliveries signed with either secret.
func TestHandlerSecretRotation(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	secrets := ParseSecrets([]byte("old-secret\n\nnew-secret\n"))
	h := NewHandler(pub, HandlerOptions{Secrets: secrets})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for i, s := range []string{"old-secret", "new-secret"} {
		body := runPayload(t, ghsim.RunPayload{RunID: int64(9000 + i)})
		if r := post(t, srv.URL, withSig(signed(EventWorkflowRun, s, body), ghsim.Sign(s, body))); r.status != http.StatusAccepted {
			t.Errorf("signed with %s: status %d, want 202", s, r.status)
		}
	}
	body := runPayload(t, ghsim.RunPayload{RunID: 9100})
	if r := post(t, srv.URL, withSig(signed(EventWorkflowRun, "x", body), ghsim.Sign("retired-secret", body))); r.status != http.StatusUnauthorized {
		t.Errorf("signed with a retired secret: status %d, want 401", r.status)
	}
	if len(pub.events) != 2 {
		t.Errorf("published %d events, want 2", len(pub.events))
	}
}

// FuzzHandler sends arbitrary signed bodies: the handler never panics,
// answers one of its documented statuses, and publishes only valid events.
func FuzzHandler(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(EventWorkflowRun, s)
	}
	f.Add(EventPing, sample(f, "ping.payload.json"))
	f.Add("push", []byte(`{}`))
	pub := &fakePublisher{}
	h := NewHandler(pub, HandlerOptions{Secrets: NewSecrets(testSecret), Logger: slog.New(slog.DiscardHandler), MaxBodyBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		pub.mu.Lock()
		pub.events = pub.events[:0]
		pub.mu.Unlock()
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		req.Header.Set(HeaderEvent, event)
		req.Header.Set(HeaderDelivery, "fuzz")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(SignatureHeader, ghsim.Sign(testSecret, body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		pub.mu.Lock()
		defer pub.mu.Unlock()
		if (rec.Code == http.StatusAccepted) != (len(pub.events) == 1) {
			t.Fatalf("status %d but %d events published", rec.Code, len(pub.events))
		}
		for _, ev := range pub.events {
			if err := ev.Validate(); err != nil || ev.Repository.ID <= 0 {
				t.Fatalf("published an invalid event %+v: %v", ev, err)
			}
			if ev.DeliveryID != "fuzz" || ev.Source != runevent.SourceWebhook || ev.ReceivedAt.IsZero() {
				t.Fatalf("event metadata not set: %+v", ev)
			}
		}
	})
}

func withSig(d testDelivery, sig string) testDelivery { d.signature = sig; return d }

func withHeader(d testDelivery, k, v string) testDelivery {
	if d.header == nil {
		d.header = http.Header{}
	}
	d.header.Set(k, v)
	return d
}

// BenchmarkHandler measures the handler's own work per delivery (read,
// verify, parse, filter, encode, respond) with a publisher that acks at
// once, so that neither the network nor JetStream is counted.
func BenchmarkHandler(b *testing.B) {
	body := runPayload(b, ghsim.RunPayload{RunID: 1})
	sig := ghsim.Sign(testSecret, body)
	h := NewHandler(nopPublisher{}, HandlerOptions{
		Secrets: NewSecrets(testSecret),
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)), // info, like production
	})
	req := httptest.NewRequest(http.MethodPost, "/webhook", nil)
	req.Header.Set(HeaderEvent, EventWorkflowRun)
	req.Header.Set(HeaderDelivery, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, sig)
	req.ContentLength = int64(len(body))
	rd := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(_ context.Context, e *runevent.RunCompleted) (events.PublishResult, error) {
	if _, err := e.Encode(); err != nil { // the real publisher's encoding cost
		return events.PublishResult{}, err
	}
	return events.PublishResult{Stream: "S", Sequence: 1}, nil
}
