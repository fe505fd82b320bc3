package archive

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the archiver's Prometheus metrics. Labels are bounded: never
// a repository name or an id.
type Metrics struct {
	artifacts  *prometheus.CounterVec
	failures   *prometheus.CounterVec
	bytes      prometheus.Counter
	downloaded prometheus.Counter
	resumes    prometheus.Counter
	inFlight   prometheus.Gauge
	duration   prometheus.Histogram
	throughput prometheus.Histogram
	deletes    *prometheus.CounterVec
	runs       *prometheus.CounterVec

	attestations *prometheus.CounterVec
	trustedRoots *prometheus.CounterVec

	manifestConflicts prometheus.Counter
	leaseWaits        prometheus.Counter
	leasesLost        prometheus.Counter
}

// NewMetrics registers the archiver's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		artifacts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archiver_artifacts_total",
			Help: "Artifacts settled, by outcome (archived, skipped = already archived, expired, failed).",
		}, []string{"outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archiver_artifact_failures_total",
			Help: "Failed artifact transfer attempts by reason.",
		}, []string{"reason"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "archiver_archived_bytes_total",
			Help: "Bytes of verified artifacts written to the store.",
		}),
		downloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "archiver_downloaded_bytes_total",
			Help: "Bytes read from GitHub's blob host, including re-downloads after a resume.",
		}),
		resumes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "archiver_download_resumes_total",
			Help: "Downloads resumed with a Range request after a broken stream or failed part.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "archiver_transfers_in_flight",
			Help: "Artifact transfers in progress.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "archiver_transfer_duration_seconds",
			Help:    "Duration of successful artifact transfers.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 12),
		}),
		throughput: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "archiver_transfer_throughput_bytes_per_second",
			Help:    "Throughput of successful artifact transfers.",
			Buckets: prometheus.ExponentialBuckets(64<<10, 2, 14),
		}),
		deletes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archiver_github_deletes_total",
			Help: "Artifacts deleted from GitHub after verification, by outcome (deleted, dry_run, refused, failed).",
		}, []string{"outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archiver_runs_total",
			Help: "Run attempts processed, by outcome (complete, already_complete, incomplete, waiting, late_artifacts).",
		}, []string{"outcome"}),
		attestations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archiver_attestation_lookups_total",
			Help: "Attestation lookups of archived artifacts, by outcome (found, none, failed: recorded in the manifest and retried by a later delivery).",
		}, []string{"outcome"}),
		trustedRoots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archiver_trusted_root_snapshots_total",
			Help: "Daily trusted root snapshot checks, by outcome (written, exists, failed).",
		}, []string{"outcome"}),
		manifestConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "archiver_manifest_conflicts_total",
			Help: "Conditional manifest writes that lost to another worker's write and were merged again.",
		}),
		leaseWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "archiver_lease_waits_total",
			Help: "Artifacts found in transfer by another live worker and waited for instead of transferred again.",
		}),
		leasesLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "archiver_leases_lost_total",
			Help: "Artifact leases this worker could not renew in time; its transfer stopped and deferred to the new holder.",
		}),
	}
	reg.MustRegister(m.artifacts, m.failures, m.bytes, m.downloaded, m.resumes, m.inFlight,
		m.duration, m.throughput, m.deletes, m.runs, m.attestations, m.trustedRoots, m.manifestConflicts, m.leaseWaits, m.leasesLost)
	return m
}
