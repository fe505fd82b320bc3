package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testSecret = "test-secret-Ω"

// startNATS starts an embedded JetStream server on a random local port
// (port > 0 reuses a port, for restarts) and stops it in t.Cleanup.
func startNATS(t testing.TB, storeDir string, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready within 10s")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

func natsPort(ns *server.Server) int {
	u := ns.ClientURL()
	p, _ := strconv.Atoi(u[strings.LastIndex(u, ":")+1:])
	return p
}

// logBuffer collects JSON log lines safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// env is a handler publishing to a real embedded JetStream.
type env struct {
	ns       *server.Server
	storeDir string
	nc       *nats.Conn
	js       jetstream.JetStream
	topo     events.Topology
	reg      *prometheus.Registry
	h        *Handler
	srv      *httptest.Server
	logs     *logBuffer
	now      time.Time
}

type envOption func(*events.Topology, *HandlerOptions)

// setup starts JetStream, provisions the streams and serves a Handler on a
// real TCP listener, all torn down by t.Cleanup.
func setup(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{storeDir: t.TempDir(), logs: &logBuffer{}, reg: prometheus.NewRegistry(),
		now: time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)}
	e.ns = startNATS(t, e.storeDir, 0)
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	nc, err := events.Connect(events.ConnConfig{URL: e.ns.ClientURL()}, "webhook-test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e.nc = nc
	if e.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	ho := HandlerOptions{
		Secrets: NewSecrets(testSecret), PublishTimeout: 2 * time.Second,
		Metrics: m, Logger: log, Now: func() time.Time { return e.now },
	}
	for _, o := range opts {
		o(&e.topo, &ho)
	}
	e.topo = e.topo.WithDefaults()
	if err := events.ProvisionStreams(t.Context(), e.js, e.topo); err != nil {
		t.Fatal(err)
	}
	e.h = NewHandler(events.NewPublisher(e.js, e.topo, ho.PublishTimeout), ho)
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	return e
}

// delivery is a webhook request as GitHub sends it.
type testDelivery struct {
	event, id   string
	body        []byte
	contentType string
	signature   string // "" signs body with testSecret; "-" sends none
	header      http.Header
}

func signed(event, id string, body []byte) testDelivery {
	return testDelivery{event: event, id: id, body: body, contentType: "application/json"}
}

type result struct {
	status int
	body   []byte
	took   time.Duration
}

func (r result) accepted(t *testing.T) Accepted {
	t.Helper()
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202; body %s", r.status, r.body)
	}
	var a Accepted
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("decode 202 body %q: %v", r.body, err)
	}
	return a
}

func (r result) response(t *testing.T) Response {
	t.Helper()
	var resp Response
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatalf("decode body %q: %v", r.body, err)
	}
	return resp
}

func post(t *testing.T, url string, d testDelivery) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(d.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range d.header {
		req.Header[k] = v
	}
	if d.event != "" {
		req.Header.Set(HeaderEvent, d.event)
	}
	if d.id != "" {
		req.Header.Set(HeaderDelivery, d.id)
	}
	if d.contentType != "" {
		req.Header.Set("Content-Type", d.contentType)
	}
	switch d.signature {
	case "":
		req.Header.Set(SignatureHeader, ghsim.Sign(testSecret, d.body))
	case "-":
	default:
		req.Header.Set(SignatureHeader, d.signature)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, body: b, took: time.Since(start)}
}

func (e *env) post(t *testing.T, d testDelivery) result { return post(t, e.srv.URL+"/webhook", d) }

// streamMsgs returns the number of messages in the run stream.
func (e *env) streamMsgs(t *testing.T) uint64 {
	t.Helper()
	s, err := e.js.Stream(t.Context(), e.topo.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func (e *env) getMsg(t *testing.T, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := e.js.Stream(t.Context(), e.topo.Stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatalf("get message %d: %v", seq, err)
	}
	return m
}

// metric returns the value of a counter, gauge or the sample count of a
// histogram whose labels include labels.
func metric(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		return 0
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// runPayload renders a realistic App delivery for run id with attempt.
func runPayload(t testing.TB, p ghsim.RunPayload) []byte {
	t.Helper()
	if p.InstallationID == 0 {
		p.InstallationID = 4242
	}
	if p.RepoID == 0 {
		p.RepoID = 777
	}
	if p.Owner == "" {
		p.Owner, p.Repo = "acme", "rocket"
	}
	b, err := ghsim.WorkflowRunPayload(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakePublisher records events; block makes Publish wait for ctx.
type fakePublisher struct {
	mu       sync.Mutex
	events   []runevent.RunCompleted
	block    bool
	deadline atomic.Bool // Publish saw a context deadline
}

func (f *fakePublisher) Publish(ctx context.Context, e *runevent.RunCompleted) (events.PublishResult, error) {
	if _, ok := ctx.Deadline(); ok {
		f.deadline.Store(true)
	}
	if f.block {
		<-ctx.Done()
		return events.PublishResult{}, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, *e)
	return events.PublishResult{Stream: "FAKE", Sequence: uint64(len(f.events))}, nil
}
