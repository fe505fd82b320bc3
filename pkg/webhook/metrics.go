package webhook

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a delivery; they label archiver_webhook_deliveries_total.
const (
	OutcomeAccepted     = "accepted"     // 202: stored in JetStream
	OutcomeDuplicate    = "duplicate"    // 202: JetStream already had this run attempt
	OutcomeIgnored      = "ignored"      // 200: not an event, action or run we archive
	OutcomePing         = "ping"         // 200
	OutcomeUnauthorized = "unauthorized" // 401: signature missing or wrong
	OutcomeBadRequest   = "bad_request"  // 400: malformed body or headers
	OutcomeTooLarge     = "too_large"    // 413
	OutcomeMediaType    = "unsupported"  // 415: neither JSON nor form-encoded
	OutcomeUnavailable  = "unavailable"  // 503: JetStream did not acknowledge in time
	OutcomeOverloaded   = "overloaded"   // 503: the body buffer budget was exhausted
	OutcomeTimeout      = "timeout"      // 408: the body did not arrive within the body timeout
	OutcomeBadMethod    = "bad_method"   // 405
)

// Label values.
const (
	metricPrefix = "archiver_webhook_"
	// Publish results.
	publishOK    = "ok"
	publishError = "error"
	// Signature failure reasons.
	signatureMissing   = "missing"
	signatureMalformed = "malformed"
	signatureMismatch  = "mismatch"
	// Event labels besides ping and workflow_run.
	eventOther   = "other"
	eventMissing = "missing"
)

// Metrics are the webhook's Prometheus metrics. Every label has a small,
// fixed set of values: never a repository, owner or id.
type Metrics struct {
	// deliveries counts deliveries by event (ping, workflow_run, other,
	// missing) and outcome (the Outcome constants).
	deliveries *prometheus.CounterVec
	// signatureFailures counts rejected signatures by reason (missing,
	// malformed, mismatch).
	signatureFailures *prometheus.CounterVec
	// ignored counts 200-ignored deliveries by reason (event, action or a
	// filter Reason constant).
	ignored *prometheus.CounterVec
	// publishSeconds is the JetStream publish latency by result (ok, error).
	publishSeconds *prometheus.HistogramVec
	// bodyBytes is the size of delivery bodies that were read.
	bodyBytes prometheus.Histogram
	// inFlight is the number of requests being handled.
	inFlight prometheus.Gauge
	// bodyBytesInFlight is the bytes of body buffers held by requests in
	// flight; bodyBytesLimit is its bound.
	bodyBytesInFlight prometheus.Gauge
	bodyBytesLimit    prometheus.Gauge
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "deliveries_total",
			Help: "Webhook deliveries by event type and outcome.",
		}, []string{"event", "outcome"}),
		signatureFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "signature_failures_total",
			Help: "Deliveries rejected with 401, by reason (missing, malformed, mismatch).",
		}, []string{"reason"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "ignored_total",
			Help: "Deliveries answered 200 without publishing, by reason.",
		}, []string{"reason"}),
		publishSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricPrefix + "publish_duration_seconds",
			Help:    "Time from publish to JetStream acknowledgement (or failure), by result.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"result"}),
		bodyBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricPrefix + "body_size_bytes",
			Help:    "Size of the delivery bodies read.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10), // 1 KiB .. 256 MiB
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "in_flight_requests",
			Help: "Webhook requests being handled.",
		}),
		bodyBytesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "body_bytes_in_flight",
			Help: "Bytes of body buffers held by the requests being handled.",
		}),
		bodyBytesLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "body_bytes_in_flight_limit",
			Help: "Bound of archiver_webhook_body_bytes_in_flight; past it, deliveries get 503 (outcome overloaded).",
		}),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.signatureFailures, m.ignored, m.publishSeconds, m.bodyBytes, m.inFlight, m.bodyBytesInFlight, m.bodyBytesLimit} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("webhook: register metrics: %w", err)
		}
	}
	// Create the common series at zero so that rates and alerts work from
	// the first scrape.
	for _, ev := range []string{EventWorkflowRun, EventPing} {
		for _, o := range []string{OutcomeAccepted, OutcomeDuplicate, OutcomeIgnored, OutcomeUnauthorized, OutcomeBadRequest, OutcomeTooLarge, OutcomeUnavailable, OutcomeOverloaded, OutcomeTimeout} {
			m.deliveries.WithLabelValues(ev, o)
		}
	}
	for _, r := range []string{signatureMissing, signatureMalformed, signatureMismatch} {
		m.signatureFailures.WithLabelValues(r)
	}
	for _, r := range []string{publishOK, publishError} {
		m.publishSeconds.WithLabelValues(r)
	}
	return m, nil
}
