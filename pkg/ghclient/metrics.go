package ghclient

import (
	"strconv"

	"github.com/google/go-github/v66/github"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts GitHub API requests and tracks the rate-limit budget.
type Metrics struct {
	requests  *prometheus.CounterVec
	remaining prometheus.Gauge
	limited   *prometheus.CounterVec
	paced     prometheus.Counter
}

// NewMetrics registers the GitHub client's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archiver_github_requests_total",
			Help: "GitHub API requests by operation and HTTP status class.",
		}, []string{"op", "code"}),
		remaining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "archiver_github_rate_limit_remaining",
			Help: "X-RateLimit-Remaining of the most recent GitHub API response.",
		}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archiver_github_rate_limited_total",
			Help: "GitHub API responses that were rate limits, by kind (primary, secondary).",
		}, []string{"kind"}),
		paced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "archiver_github_paced_requests_total",
			Help: "GitHub API requests delayed because the rate-limit budget ran low.",
		}),
	}
	reg.MustRegister(m.requests, m.remaining, m.limited, m.paced)
	return m
}

func (m *Metrics) observe(op string, resp *github.Response, err error) {
	code := "error"
	if s := statusOf(resp, err); s != 0 {
		code = strconv.Itoa(s)
	}
	m.requests.WithLabelValues(op, code).Inc()
	if resp != nil && resp.Response != nil && resp.Header.Get("X-RateLimit-Remaining") != "" {
		m.remaining.Set(float64(resp.Rate.Remaining))
	}
	switch {
	case code == "429":
		m.limited.WithLabelValues("secondary").Inc()
	case code == "403" && resp != nil && resp.Response != nil && resp.Header.Get("Retry-After") != "":
		m.limited.WithLabelValues("secondary").Inc()
	case code == "403" && resp != nil && resp.Response != nil && resp.Header.Get("X-RateLimit-Remaining") == "0":
		m.limited.WithLabelValues("primary").Inc()
	}
}
