package webhook

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
)

// bogusSignature is well-formed but signs nothing.
var bogusSignature = "sha256=" + strings.Repeat("0", 64)

// slowRequest opens a connection to addr and sends the headers of a
// workflow_run delivery announcing contentLength bytes, then first, and
// holds the connection open; it is closed in t.Cleanup.
func slowRequest(t *testing.T, addr string, contentLength int, first []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: test\r\n%s: %s\r\n%s: slow\r\nContent-Type: application/json\r\n%s: %s\r\nContent-Length: %d\r\n\r\n%s",
		HeaderEvent, EventWorkflowRun, HeaderDelivery, SignatureHeader, bogusSignature, contentLength, first); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readResponse reads the answer to the request sent on conn.
func readResponse(t *testing.T, conn net.Conn) (*http.Response, []byte) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestHandlerSlowBodiesHoldLittleMemory opens many connections that
// announce a 26 MB body and send one byte: the handler must not allocate
// what they announce (it used to: 25 MiB each before any byte arrived),
// and a valid delivery still gets 202 meanwhile.
func TestHandlerSlowBodiesHoldLittleMemory(t *testing.T) {
	// Not parallel: it measures the heap of the whole test process.
	e := setup(t)
	const (
		conns     = 64
		announced = 26_000_000
		maxGrowth = 32 << 20 // conns × announced is 1.6 GB
	)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range conns {
		slowRequest(t, e.srv.Listener.Addr().String(), announced, []byte("{"))
	}
	testserver.Eventually(t, 20*time.Second, fmt.Sprintf("%d slow requests in the handler", conns), func() bool {
		return metric(t, e.reg, "archiver_webhook_in_flight_requests") == conns
	})
	e.post(t, signed(EventWorkflowRun, "while-slow", runPayload(t, ghsim.RunPayload{RunID: 11001}))).accepted(t)

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > maxGrowth {
		t.Fatalf("heap in use grew by %d MiB with %d slow bodies open, want < %d MiB", grown>>20, conns, maxGrowth>>20)
	}
	// What they hold is charged to the budget, and small.
	if held := metric(t, e.reg, "archiver_webhook_body_bytes_in_flight"); held > conns*initialBodyBuffer {
		t.Errorf("slow bodies hold %v bytes of buffers, want at most %d", held, conns*initialBodyBuffer)
	}
}

// TestHandlerBodyBudget fills the body budget with slow bodies: further
// deliveries get a fast 503 with Retry-After, counted and logged, until a
// slow body goes away; a body that outgrows the budget while it arrives
// gets 503 too.
func TestHandlerBodyBudget(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	pub := &fakePublisher{}
	const (
		budget = 64 << 10
		slow   = budget / initialBodyBuffer // slow bodies that fill it
	)
	h := NewHandler(pub, HandlerOptions{
		Secrets: NewSecrets(testSecret), Metrics: m, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		MaxBodyBytes: 1 << 20, BodyBytesInFlight: budget, BodyTimeout: time.Minute,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if v := metric(t, reg, "archiver_webhook_body_bytes_in_flight_limit"); v != budget {
		t.Errorf("limit gauge = %v, want %d", v, budget)
	}

	// Each slow body holds its first buffer, not the 1 MiB it announces.
	conns := make([]net.Conn, slow)
	for i := range conns {
		conns[i] = slowRequest(t, srv.Listener.Addr().String(), 1<<20, []byte("{"))
	}
	testserver.Eventually(t, 10*time.Second, "the slow bodies to fill the budget", func() bool {
		return metric(t, reg, "archiver_webhook_body_bytes_in_flight") == budget
	})

	body := runPayload(t, ghsim.RunPayload{RunID: 12001})
	r := post(t, srv.URL, signed(EventWorkflowRun, "refused", body))
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("delivery with the budget exhausted: status %d, want 503; body %s", r.status, r.body)
	}
	if resp := r.response(t); resp.DeliveryID != "refused" || !strings.Contains(resp.Reason, "in flight") {
		t.Errorf("503 body %+v", resp)
	}
	if r.took > 5*time.Second {
		t.Errorf("503 took %s, want a fast answer", r.took)
	}
	if v := metric(t, reg, "archiver_webhook_deliveries_total", "event", EventWorkflowRun, "outcome", OutcomeOverloaded); v != 1 {
		t.Errorf("overloaded deliveries = %v, want 1", v)
	}
	if !strings.Contains(logs.String(), `"msg":"delivery refused: body buffer budget exhausted","delivery_id":"refused"`) {
		t.Errorf("no log line for the refusal:\n%s", logs)
	}
	// Retry-After is on the wire, too.
	c := slowRequest(t, srv.Listener.Addr().String(), 100, []byte("{"))
	resp, _ := readResponse(t, c)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "60" || !resp.Close {
		t.Errorf("refused request: status %d, Retry-After %q, close %v; want 503, 60 (the body timeout), close",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close)
	}

	// Half the slow clients go away: their share is free again, room for
	// a delivery.
	for _, c := range conns[:slow/2] {
		c.Close()
	}
	testserver.Eventually(t, 10*time.Second, "the closed bodies' share to be released", func() bool {
		return metric(t, reg, "archiver_webhook_body_bytes_in_flight") == budget/2
	})
	if len(body) > budget/2 {
		t.Fatalf("the delivery (%d bytes) does not fit in half the budget", len(body))
	}
	post(t, srv.URL, signed(EventWorkflowRun, "accepted", body)).accepted(t)

	// A body larger than the whole budget is refused as it outgrows it.
	for _, c := range conns[slow/2:] {
		c.Close()
	}
	testserver.Eventually(t, 10*time.Second, "the budget to be free", func() bool {
		return metric(t, reg, "archiver_webhook_body_bytes_in_flight") == 0
	})
	big := bytes.Repeat([]byte(" "), 2*budget)
	if r := post(t, srv.URL, signed(EventWorkflowRun, "big", big)); r.status != http.StatusServiceUnavailable {
		t.Fatalf("body larger than the budget: status %d, want 503", r.status)
	}
	if !strings.Contains(logs.String(), fmt.Sprintf(`"delivery_id":"big","event":"workflow_run","content_length":%d,"read_bytes":`, 2*budget)) {
		t.Errorf("the refusal of the large body does not log its size:\n%s", logs)
	}
	testserver.Eventually(t, 10*time.Second, "the budget to be free again", func() bool {
		return metric(t, reg, "archiver_webhook_body_bytes_in_flight") == 0
	})
	post(t, srv.URL, signed(EventWorkflowRun, "after", runPayload(t, ghsim.RunPayload{RunID: 12002}))).accepted(t)
	if len(pub.events) != 2 {
		t.Errorf("published %d events, want 2", len(pub.events))
	}
}

// TestHandlerSlowBodyTimesOut sends part of a body and stops: the client
// gets 408 once the body timeout has passed, and its share of the budget is
// released.
func TestHandlerSlowBodyTimesOut(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	const timeout = 300 * time.Millisecond
	h := NewHandler(&fakePublisher{}, HandlerOptions{
		Secrets: NewSecrets(testSecret), Metrics: m, Logger: slog.New(slog.NewJSONHandler(logs, nil)), BodyTimeout: timeout,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	start := time.Now()
	conn := slowRequest(t, srv.Listener.Addr().String(), 26_000_000, []byte(`{"action":`))
	resp, b := readResponse(t, conn)
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("slow body: status %d close %v, want 408 and close; body %s", resp.StatusCode, resp.Close, b)
	}
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("408 after %s, want just after the %s body timeout", took, timeout)
	}
	if !bytes.Contains(b, []byte("body not received within 300ms")) {
		t.Errorf("408 body %s", b)
	}
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Errorf("connection still open after the 408 (read %d bytes)", n)
	}
	if v := metric(t, reg, "archiver_webhook_deliveries_total", "event", EventWorkflowRun, "outcome", OutcomeTimeout); v != 1 {
		t.Errorf("timed-out deliveries = %v, want 1", v)
	}
	if !strings.Contains(logs.String(), `"msg":"delivery refused: body not received in time","delivery_id":"slow","event":"workflow_run","content_length":26000000,"read_bytes":10`) {
		t.Errorf("no log line for the timeout:\n%s", logs)
	}
	testserver.Eventually(t, 10*time.Second, "the slow body's share to be released", func() bool {
		return metric(t, reg, "archiver_webhook_body_bytes_in_flight") == 0
	})
	// A delivery that is on time is not cut by the deadline of the
	// previous one, nor by its own during the publish.
	post(t, srv.URL, signed(EventWorkflowRun, "on-time", runPayload(t, ghsim.RunPayload{RunID: 13001}))).accepted(t)
}

// TestReadBodyGrowsWithArrivals reads bodies of many sizes, announced and
// chunked, through the growing buffer, with a budget that fits them
// exactly.
func TestReadBodyGrowsWithArrivals(t *testing.T) {
	t.Parallel()
	const maxBody = 100_000
	for _, size := range []int{0, 1, initialBodyBuffer - 1, initialBodyBuffer, initialBodyBuffer + 1, 3 * initialBodyBuffer, maxBody} {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d chunked=%v", size, chunked), func(t *testing.T) {
				t.Parallel()
				h := NewHandler(&fakePublisher{}, HandlerOptions{Secrets: NewSecrets(testSecret), MaxBodyBytes: maxBody, BodyBytesInFlight: 4 * maxBody})
				want := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
				var src io.Reader = bytes.NewReader(want)
				if chunked {
					src = io.MultiReader(src)
				}
				req := httptest.NewRequest(http.MethodPost, "/webhook", src)
				if chunked {
					req.ContentLength = -1
				}
				b, err := h.readBody(httptest.NewRecorder(), req)
				if err != nil {
					t.Fatalf("readBody: %v", err)
				}
				if !bytes.Equal(b.buf, want) {
					t.Fatalf("read %d bytes, want the %d sent", len(b.buf), size)
				}
				if !chunked && cap(b.buf) > max(size, initialBodyBuffer) {
					t.Errorf("buffer of %d bytes for an announced %d", cap(b.buf), size)
				}
				if b.charged != int64(cap(b.buf)) || h.budget.used.Load() != b.charged {
					t.Errorf("charged %d, budget in use %d, buffer %d", b.charged, h.budget.used.Load(), cap(b.buf))
				}
				h.release(b)
				if used := h.budget.used.Load(); used != 0 {
					t.Errorf("budget in use after release: %d", used)
				}
			})
		}
	}
	// One byte over the limit is an *http.MaxBytesError, announced or not.
	for _, chunked := range []bool{false, true} {
		h := NewHandler(&fakePublisher{}, HandlerOptions{Secrets: NewSecrets(testSecret), MaxBodyBytes: maxBody})
		var src io.Reader = bytes.NewReader(make([]byte, maxBody+1))
		if chunked {
			src = io.MultiReader(src)
		}
		req := httptest.NewRequest(http.MethodPost, "/webhook", src)
		if chunked {
			req.ContentLength = -1
		}
		b, err := h.readBody(httptest.NewRecorder(), req)
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			t.Errorf("chunked=%v: %d bytes over a %d limit: err %v, want *http.MaxBytesError", chunked, maxBody+1, maxBody, err)
		}
		if b != nil {
			h.release(b)
		}
	}
}
