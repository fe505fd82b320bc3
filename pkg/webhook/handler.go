package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// GitHub delivery headers.
const (
	HeaderEvent    = "X-GitHub-Event"
	HeaderDelivery = "X-GitHub-Delivery"
	HeaderHookID   = "X-GitHub-Hook-ID"
)

// Events and actions the handler acts on.
const (
	EventPing        = "ping"
	EventWorkflowRun = "workflow_run"
	ActionCompleted  = "completed"
)

// Ignore reasons besides the filter's (see the Reason constants).
const (
	ReasonEvent  = "event"  // an event type other than workflow_run
	ReasonAction = "action" // a workflow_run action other than completed
)

// DefaultMaxBodyBytes is GitHub's maximum payload size, 25 MiB.
const DefaultMaxBodyBytes = 25 << 20

// Publisher stores a run event durably. It returns only once JetStream has
// acknowledged the event (a duplicate acknowledgement is success), and an
// error otherwise. [events.Publisher] is the implementation.
type Publisher interface {
	Publish(ctx context.Context, e *runevent.RunCompleted) (events.PublishResult, error)
}

var _ Publisher = (*events.Publisher)(nil)

// HandlerOptions configure a [Handler]. Secrets is required.
type HandlerOptions struct {
	// Secrets verify X-Hub-Signature-256. With none, every delivery is
	// rejected.
	Secrets Secrets
	// Filter selects the completed runs to publish (default: all).
	Filter Filter
	// MaxBodyBytes bounds the body read (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// BodyBytesInFlight bounds the body buffers of all requests in flight;
	// a request that would pass it gets 503 (default
	// DefaultBodyBytesInFlight).
	BodyBytesInFlight int64
	// BodyTimeout bounds the wait for a body once the headers are in; a
	// slower client gets 408 (default DefaultBodyTimeout). It needs a
	// ResponseWriter that supports http.ResponseController's
	// SetReadDeadline, as net/http's does.
	BodyTimeout time.Duration
	// PublishTimeout bounds the wait for JetStream's acknowledgement
	// (default events.DefaultPublishTimeout).
	PublishTimeout time.Duration
	// Metrics, if nil, are registered on a private registry.
	Metrics *Metrics
	// Logger, if nil, discards.
	Logger *slog.Logger
	// Now returns the received time of a delivery (default time.Now).
	Now func() time.Time
}

// Handler serves POST /webhook. See the package documentation for what it
// answers.
type Handler struct {
	pub         Publisher
	secrets     Secrets
	filter      Filter
	maxBody     int64
	budget      *bodyBudget
	bodyTimeout time.Duration
	retryAfter  string // of a 503 for an exhausted budget
	timeout     time.Duration
	m           *Metrics
	log         *slog.Logger
	now         func() time.Time
	bufs        sync.Pool // *body
}

// NewHandler returns a handler that publishes accepted runs through pub.
func NewHandler(pub Publisher, o HandlerOptions) *Handler {
	h := &Handler{
		pub:         pub,
		secrets:     o.Secrets,
		filter:      o.Filter,
		maxBody:     cmp.Or(o.MaxBodyBytes, DefaultMaxBodyBytes),
		bodyTimeout: cmp.Or(o.BodyTimeout, DefaultBodyTimeout),
		timeout:     cmp.Or(o.PublishTimeout, events.DefaultPublishTimeout),
		m:           o.Metrics,
		log:         o.Logger,
		now:         o.Now,
	}
	if h.m == nil {
		h.m, _ = NewMetrics(prometheus.NewRegistry()) // a fresh registry cannot conflict
	}
	h.budget = &bodyBudget{limit: cmp.Or(o.BodyBytesInFlight, DefaultBodyBytesInFlight), gauge: h.m.bodyBytesInFlight}
	h.m.bodyBytesLimit.Set(float64(h.budget.limit))
	// A slow client holds its share of the budget for at most the body
	// timeout: retrying sooner is likely to find it still in use.
	h.retryAfter = strconv.Itoa(int((h.bodyTimeout + time.Second - 1) / time.Second))
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.bufs.New = func() any { return new(body) }
	return h
}

// Response is the JSON body of every answer but 202.
type Response struct {
	// Status is "pong", "ignored" or "error".
	Status string `json:"status"`
	// Reason says why a delivery was ignored or refused. A 401 carries no
	// detail.
	Reason     string `json:"reason,omitempty"`
	DeliveryID string `json:"delivery_id,omitempty"`
}

// Accepted is the JSON body of a 202: the event is stored in JetStream.
type Accepted struct {
	Status     string `json:"status"` // "accepted"
	DeliveryID string `json:"delivery_id"`
	Stream     string `json:"stream"`
	Sequence   uint64 `json:"sequence"`
	// Duplicate is true when JetStream already held this run attempt (a
	// redelivery, or a second hook); the event was not stored twice.
	Duplicate bool `json:"duplicate"`
}

// delivery is the request state that every log line and metric carries.
type delivery struct {
	id, event, label string
}

func (d *delivery) attrs(extra ...any) []any {
	return append([]any{"delivery_id", d.id, "event", d.event}, extra...)
}

// ServeHTTP handles one delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.m.inFlight.Inc()
	defer h.m.inFlight.Dec()
	d := delivery{id: r.Header.Get(HeaderDelivery), event: r.Header.Get(HeaderEvent)}
	switch d.event {
	case EventPing, EventWorkflowRun:
		d.label = d.event
	case "":
		d.label = eventMissing
	default:
		d.label = eventOther
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, &d, http.StatusMethodNotAllowed, OutcomeBadMethod, "method "+r.Method+" not allowed")
		return
	}
	// The body must arrive within the body timeout of the headers, so that
	// a slow client holds its connection and its share of the body budget
	// that long at most. (A ResponseWriter without deadlines, such as
	// httptest's recorder, has no client to wait for.)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(h.bodyTimeout))
	b, err := h.readBody(w, r)
	if b != nil {
		defer h.release(b)
	}
	if err != nil {
		h.bodyFailed(w, r, &d, b, err)
		return
	}
	// The body is in: the publish below is bounded by its own timeout.
	_ = rc.SetReadDeadline(time.Time{})
	body := b.buf
	h.m.bodyBytes.Observe(float64(len(body)))

	if err := h.secrets.Verify(r.Header.Get(SignatureHeader), body); err != nil {
		reason := signatureMismatch
		switch {
		case errors.Is(err, ErrSignatureMissing):
			reason = signatureMissing
		case errors.Is(err, ErrSignatureMalformed):
			reason = signatureMalformed
		}
		h.m.signatureFailures.WithLabelValues(reason).Inc()
		h.log.Warn("delivery refused: bad signature", d.attrs("reason", reason,
			"sha1_signature_only", reason == signatureMissing && r.Header.Get("X-Hub-Signature") != "",
			"remote", r.RemoteAddr)...)
		h.fail(w, &d, http.StatusUnauthorized, OutcomeUnauthorized, "")
		return
	}

	switch d.event {
	case EventPing:
		h.log.Info("ping", d.attrs("hook_id", r.Header.Get(HeaderHookID))...)
		h.count(&d, OutcomePing)
		h.reply(w, http.StatusOK, Response{Status: "pong", DeliveryID: d.id})
	case EventWorkflowRun:
		h.workflowRun(w, r, &d, body)
	case "":
		h.log.Warn("delivery refused: no event type", d.attrs("remote", r.RemoteAddr)...)
		h.fail(w, &d, http.StatusBadRequest, OutcomeBadRequest, "missing "+HeaderEvent+" header")
	default:
		h.ignore(w, &d, ReasonEvent, "event "+strconv.Quote(d.event)+" is not archived")
	}
}

func (h *Handler) workflowRun(w http.ResponseWriter, r *http.Request, d *delivery, body []byte) {
	payload, status, err := formPayload(r.Header.Get("Content-Type"), body)
	if err != nil {
		outcome := OutcomeBadRequest
		if status == http.StatusUnsupportedMediaType {
			outcome = OutcomeMediaType
		}
		h.log.Warn("delivery refused: bad body encoding", d.attrs("err", err)...)
		h.fail(w, d, status, outcome, err.Error())
		return
	}
	run, err := ParseWorkflowRun(payload)
	if err != nil {
		h.log.Warn("delivery refused: malformed payload", d.attrs("err", err)...)
		h.fail(w, d, http.StatusBadRequest, OutcomeBadRequest, err.Error())
		return
	}
	e := &run.Event
	if run.Action != ActionCompleted {
		h.ignore(w, d, ReasonAction, "action "+strconv.Quote(run.Action)+" is not archived", "repo", e.Repository.FullName, "run_id", e.WorkflowRun.ID)
		return
	}
	if err := run.Validate(); err != nil {
		h.log.Warn("delivery refused: incomplete run", d.attrs("err", err, "repo", e.Repository.FullName, "run_id", e.WorkflowRun.ID)...)
		h.fail(w, d, http.StatusBadRequest, OutcomeBadRequest, err.Error())
		return
	}
	if reason := h.filter.Match(e); reason != "" {
		h.ignore(w, d, reason, "filtered out by "+reason, "repo", e.Repository.FullName, "run_id", e.WorkflowRun.ID)
		return
	}
	e.DeliveryID = d.id
	e.ReceivedAt = h.now().UTC()

	// The publish runs to its acknowledgement or its timeout even if
	// GitHub hangs up, and graceful shutdown waits for it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.timeout)
	defer cancel()
	start := time.Now()
	res, err := h.pub.Publish(ctx, e)
	elapsed := time.Since(start).Seconds()
	if err != nil {
		h.m.publishSeconds.WithLabelValues(publishError).Observe(elapsed)
		// Not stored (or not known to be): fail the delivery so that it
		// can be redelivered. A late store makes the redelivery a duplicate.
		h.log.Error("publish failed", d.attrs("err", err, "repo", e.Repository.FullName,
			"run_id", e.WorkflowRun.ID, "run_attempt", e.WorkflowRun.RunAttempt)...)
		w.Header().Set("Retry-After", "5")
		h.fail(w, d, http.StatusServiceUnavailable, OutcomeUnavailable, "event store unavailable; redeliver later")
		return
	}
	h.m.publishSeconds.WithLabelValues(publishOK).Observe(elapsed)
	outcome := OutcomeAccepted
	if res.Duplicate {
		outcome = OutcomeDuplicate
	}
	h.count(d, outcome)
	h.log.Info("run enqueued", d.attrs("repo", e.Repository.FullName, "run_id", e.WorkflowRun.ID,
		"run_attempt", e.WorkflowRun.RunAttempt, "installation_id", e.InstallationID,
		"stream_seq", res.Sequence, "duplicate", res.Duplicate)...)
	h.reply(w, http.StatusAccepted, Accepted{Status: "accepted", DeliveryID: d.id, Stream: res.Stream, Sequence: res.Sequence, Duplicate: res.Duplicate})
}

// formPayload returns the JSON document of a body sent as application/json
// or as application/x-www-form-urlencoded (in the "payload" field), with the
// status to answer if it cannot.
func formPayload(contentType string, body []byte) ([]byte, int, error) {
	if contentType == "" {
		return body, 0, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, http.StatusUnsupportedMediaType, errors.New("unreadable Content-Type")
	}
	switch mt {
	case "application/json":
		return body, 0, nil
	case "application/x-www-form-urlencoded":
		q, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, http.StatusBadRequest, errors.New("malformed form body")
		}
		if !q.Has("payload") {
			return nil, http.StatusBadRequest, errors.New("form body has no payload field")
		}
		return []byte(q.Get("payload")), 0, nil
	default:
		return nil, http.StatusUnsupportedMediaType, errors.New("Content-Type " + strconv.Quote(mt) + " not supported: use application/json or application/x-www-form-urlencoded")
	}
}

// bodyFailed answers a body that could not be read; b is what was read of
// it, or nil.
func (h *Handler) bodyFailed(w http.ResponseWriter, r *http.Request, d *delivery, b *body, err error) {
	read := 0
	if b != nil {
		read = len(b.buf)
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		h.log.Warn("delivery refused: body too large", d.attrs("content_length", r.ContentLength, "limit", h.maxBody, "remote", r.RemoteAddr)...)
		h.fail(w, d, http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body exceeds "+strconv.FormatInt(h.maxBody, 10)+" bytes")
	case errors.Is(err, errBodyBudget):
		// Not read, so not known to be authentic: it may be a flood of
		// slow bodies or a burst of large ones. Either frees its share
		// within the body timeout.
		h.log.Warn("delivery refused: body buffer budget exhausted", d.attrs("content_length", r.ContentLength,
			"read_bytes", read, "body_bytes_in_flight", h.budget.used.Load(), "limit", h.budget.limit, "remote", r.RemoteAddr)...)
		w.Header().Set("Retry-After", h.retryAfter)
		w.Header().Set("Connection", "close") // do not wait for the rest of the body
		h.fail(w, d, http.StatusServiceUnavailable, OutcomeOverloaded, "too many request bodies in flight; retry later")
	case errors.Is(err, os.ErrDeadlineExceeded):
		h.log.Warn("delivery refused: body not received in time", d.attrs("content_length", r.ContentLength,
			"read_bytes", read, "body_timeout", h.bodyTimeout.String(), "remote", r.RemoteAddr)...)
		w.Header().Set("Connection", "close")
		h.fail(w, d, http.StatusRequestTimeout, OutcomeTimeout, "body not received within "+h.bodyTimeout.String())
	default:
		h.log.Warn("delivery refused: reading body", d.attrs("err", err, "read_bytes", read, "remote", r.RemoteAddr)...)
		h.fail(w, d, http.StatusBadRequest, OutcomeBadRequest, "cannot read body")
	}
}

func (h *Handler) count(d *delivery, outcome string) {
	h.m.deliveries.WithLabelValues(d.label, outcome).Inc()
}

func (h *Handler) ignore(w http.ResponseWriter, d *delivery, reason, detail string, attrs ...any) {
	h.m.ignored.WithLabelValues(reason).Inc()
	h.count(d, OutcomeIgnored)
	h.log.Debug("delivery ignored", d.attrs(append([]any{"reason", detail}, attrs...)...)...)
	h.reply(w, http.StatusOK, Response{Status: "ignored", Reason: detail, DeliveryID: d.id})
}

func (h *Handler) fail(w http.ResponseWriter, d *delivery, status int, outcome, reason string) {
	h.count(d, outcome)
	if reason == "" {
		reason = http.StatusText(status)
	}
	h.reply(w, status, Response{Status: "error", Reason: reason, DeliveryID: d.id})
}

func (h *Handler) reply(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for Response and Accepted
		b = []byte(`{"status":"error"}`)
	}
	b = append(b, '\n')
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client is gone if this fails; nothing to do
}
