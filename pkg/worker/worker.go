package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// Archiver archives one run attempt; see archive.Archiver.ArchiveRun.
type Archiver interface {
	ArchiveRun(ctx context.Context, ev *runevent.RunCompleted, final bool) (archive.RunResult, error)
}

// Defaults for [Config].
const (
	DefaultSlots      = 4
	DefaultFetchWait  = 5 * time.Second
	DefaultMaxBackoff = 10 * time.Minute
)

// Config configures a [Worker].
type Config struct {
	// Topology names the stream, consumer and dead-letter stream.
	Topology events.Topology
	// Slots is the number of runs processed at once (default 4).
	Slots int
	// FetchWait bounds one pull request (default 5 s).
	FetchWait time.Duration
	// MaxBackoff caps the retry delay of transient failures (default 10 min).
	MaxBackoff time.Duration
	// Heartbeat is how often a running job sends InProgress (default
	// AckWait/4). Above AckWait, JetStream redelivers long jobs to another
	// worker while they run; the archive is safe with that, but it wastes
	// work.
	Heartbeat time.Duration
	// Catalog is the archive's store, where the worker writes the query
	// catalogue file of every manifest ArchiveRun commits (see
	// catalog.Write). Nil: no catalogue is written.
	Catalog    archive.Store
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Worker pulls run events and archives them.
type Worker struct {
	cfg  Config
	topo events.Topology
	js   jetstream.JetStream
	arch Archiver
	log  *slog.Logger
	m    *metrics

	mu       sync.Mutex
	started  bool
	stopping chan struct{}
	jobsCtx  context.Context
	cancel   context.CancelFunc
	pullCtx  context.Context
	stopPull context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// New returns a worker. The consumer must have been provisioned
// (events.Provision).
func New(js jetstream.JetStream, arch Archiver, cfg Config) (*Worker, error) {
	cfg.Topology = cfg.Topology.WithDefaults()
	if err := cfg.Topology.Validate(); err != nil {
		return nil, err
	}
	cfg.Slots = cmp.Or(cfg.Slots, DefaultSlots)
	cfg.FetchWait = cmp.Or(cfg.FetchWait, DefaultFetchWait)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff)
	cfg.Heartbeat = cmp.Or(cfg.Heartbeat, cfg.Topology.AckWait/4)
	if cfg.Slots > cfg.Topology.MaxAckPending {
		return nil, fmt.Errorf("worker: slots %d exceed the consumer's MaxAckPending %d", cfg.Slots, cfg.Topology.MaxAckPending)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	return &Worker{cfg: cfg, topo: cfg.Topology, js: js, arch: arch, log: cfg.Logger, m: newMetrics(cfg.Registerer), stopping: make(chan struct{})}, nil
}

// Start begins pulling with every slot; it does not block.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return errors.New("worker: already started")
	}
	cons, err := w.js.Consumer(ctx, w.topo.Stream, w.topo.Consumer)
	if err != nil {
		return fmt.Errorf("worker: consumer %s/%s: %w", w.topo.Stream, w.topo.Consumer, err)
	}
	w.started = true
	// Jobs outlive the Start ctx: they are ended by Stop.
	w.jobsCtx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	w.pullCtx, w.stopPull = context.WithCancel(w.jobsCtx)
	for i := range w.cfg.Slots {
		w.wg.Add(1)
		go w.slot(cons, i)
	}
	w.log.Info("worker started", "stream", w.topo.Stream, "consumer", w.topo.Consumer, "slots", w.cfg.Slots)
	return nil
}

// Stop stops pulling, lets in-flight runs finish until ctx ends (the grace
// period), then cancels them; cancelled runs are Naked for another pod. It
// is idempotent and returns once every slot has exited.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	started := w.started
	w.stopOnce.Do(func() {
		close(w.stopping)
		if started {
			w.stopPull()
		}
	})
	w.mu.Unlock()
	if !started {
		return nil
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		w.log.Warn("grace period over, handing in-flight runs back")
		w.cancel()
		<-done
		return nil
	}
}

func (w *Worker) slot(cons jetstream.Consumer, id int) {
	defer w.wg.Done()
	for {
		select {
		case <-w.stopping:
			return
		default:
		}
		msg, err := w.next(cons)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			w.log.Warn("pull failed", "slot", id, "err", err)
			select {
			case <-w.stopping:
				return
			case <-time.After(time.Second):
			}
			continue
		}
		w.handle(msg)
	}
}

// next pulls one message, giving up when the worker stops.
func (w *Worker) next(cons jetstream.Consumer) (jetstream.Msg, error) {
	ctx, cancel := context.WithTimeout(w.pullCtx, w.cfg.FetchWait)
	defer cancel()
	return cons.Next(jetstream.FetchContext(ctx))
}

func (w *Worker) handle(msg jetstream.Msg) {
	w.m.inFlight.Inc()
	defer w.m.inFlight.Dec()
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error("message without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Nak()
		return
	}
	log := w.log.With("stream_seq", meta.Sequence.Stream, "deliveries", meta.NumDelivered, "delivery_id", msg.Headers().Get(events.HeaderDelivery))
	ev, err := runevent.DecodeRunCompleted(msg.Data())
	if err != nil {
		w.settle(msg, meta, nil, err, log)
		return
	}
	log = log.With("repo", ev.Repository.FullName, "run_id", ev.WorkflowRun.ID, "run_attempt", ev.WorkflowRun.RunAttempt)
	final := meta.NumDelivered >= uint64(w.topo.MaxDeliver)

	hbCtx, stopHB := context.WithCancel(w.jobsCtx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		w.heartbeat(hbCtx, msg, log)
	}()
	start := time.Now()
	res, err := w.arch.ArchiveRun(w.jobsCtx, ev, final)
	if res.Manifest != nil {
		w.writeCatalog(res.Manifest, log)
	}
	stopHB()
	<-hbDone
	log = log.With("elapsed", time.Since(start).Round(time.Millisecond))
	if res.AlreadyComplete {
		log = log.With("already_complete", true)
	}
	w.settle(msg, meta, ev, err, log)
}

// heartbeat tells JetStream the job is alive every Config.Heartbeat.
func (w *Worker) heartbeat(ctx context.Context, msg jetstream.Msg, log *slog.Logger) {
	if w.cfg.Heartbeat >= w.topo.AckWait {
		log.Warn("heartbeat interval is not below AckWait; the run can be redelivered while it runs", "heartbeat", w.cfg.Heartbeat, "ack_wait", w.topo.AckWait)
	}
	t := time.NewTicker(w.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := msg.InProgress(); err != nil {
				log.Warn("in-progress heartbeat failed", "err", err)
			}
		}
	}
}

// settle maps the job's outcome to exactly one JetStream action:
//   - success: DoubleAck;
//   - a permanent failure: dead-letter (the manifest, if any, is written);
//   - the last delivery, whatever else went wrong (shutdown included, as
//     JetStream would not redeliver a Nak): dead-letter with the error;
//   - shutdown (only when the worker's own job context ended): Nak at once;
//   - a rate limit: Nak until GitHub allows;
//   - anything else: Nak with exponential backoff.
func (w *Worker) settle(msg jetstream.Msg, meta *jetstream.MsgMetadata, ev *runevent.RunCompleted, err error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	final := meta.NumDelivered >= uint64(w.topo.MaxDeliver)
	outcome, at := archive.Classify(err)
	if errors.Is(err, runevent.ErrBadEvent) {
		outcome = archive.OutcomePermanent
	}
	if outcome == archive.OutcomeCanceled && w.jobsCtx.Err() == nil {
		// A cancellation that is not ours (a library's internal timeout):
		// a transient failure, not a shutdown.
		outcome = archive.OutcomeRetry
	}
	switch {
	case outcome == archive.OutcomeOK:
		// Success: the manifest is durable; confirm the ack was stored.
		if aerr := msg.DoubleAck(ctx); aerr != nil {
			log.Warn("ack not confirmed; the run will be redelivered and skipped", "err", aerr)
		}
		w.m.jobs.WithLabelValues("archived").Inc()
		log.Info("run archived")
	case outcome == archive.OutcomePermanent:
		// Permanent: no retry can succeed; keep a record, then remove.
		w.deadLetter(ctx, msg, meta, ev, err, "permanent", log)
	case final:
		// MaxDeliver reached: JetStream will not deliver it again, so a Nak
		// would lose it. The manifest records what failed.
		if outcome == archive.OutcomeCanceled {
			err = fmt.Errorf("worker: interrupted by shutdown on the last delivery: %w", err)
		}
		w.deadLetter(ctx, msg, meta, ev, err, "max_deliveries", log)
	case outcome == archive.OutcomeCanceled:
		// Shutdown: hand the run back at once for another pod.
		_ = msg.Nak()
		w.m.jobs.WithLabelValues("handed_back").Inc()
		log.Info("run handed back on shutdown")
	case outcome == archive.OutcomeRetryAfter:
		// Rate limited or not ready yet: come back when GitHub allows.
		d := max(time.Until(at), time.Second)
		_ = msg.NakWithDelay(d)
		w.m.jobs.WithLabelValues("delayed").Inc()
		log.Info("run delayed", "retry_in", d.Round(time.Second), "err", err)
	default:
		// Transient: retry with exponential backoff.
		d := w.backoff(meta.NumDelivered)
		_ = msg.NakWithDelay(d)
		w.m.jobs.WithLabelValues("retry").Inc()
		log.Warn("run failed, will retry", "retry_in", d, "err", err)
	}
}

func (w *Worker) backoff(delivered uint64) time.Duration {
	d := time.Duration(float64(5*time.Second) * math.Pow(2, float64(max(delivered, 1)-1)))
	return max(min(d, w.cfg.MaxBackoff), time.Second)
}

// deadLetter writes the event with its error to the DLQ stream, then Terms
// it. If the record cannot be written the message is Naked, never lost.
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, ev *runevent.RunCompleted, cause error, kind string, log *slog.Logger) {
	subject := w.topo.Subjects.DeadLetterRaw()
	if ev != nil {
		subject = w.topo.Subjects.DeadLetter(ev)
	}
	dl := nats.NewMsg(subject)
	dl.Data = msg.Data()
	for k, v := range msg.Headers() {
		dl.Header[k] = v
	}
	dl.Header.Del(jetstream.MsgIDHeader)
	dl.Header.Set(events.HeaderError, truncate(cause.Error(), 2048))
	dl.Header.Set(events.HeaderErrorKind, kind)
	dl.Header.Set(events.HeaderDeliveries, strconv.FormatUint(meta.NumDelivered, 10))
	dl.Header.Set(events.HeaderOrigSubject, msg.Subject())
	dl.Header.Set(events.HeaderOrigSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Header.Set(events.HeaderFailedAt, time.Now().UTC().Format(time.RFC3339))
	if _, err := w.js.PublishMsg(ctx, dl, jetstream.WithExpectStream(w.topo.DeadLetter)); err != nil {
		log.Error("dead-letter write failed; message kept for retry", "err", err, "cause", cause)
		_ = msg.NakWithDelay(w.backoff(meta.NumDelivered))
		w.m.jobs.WithLabelValues("retry").Inc()
		return
	}
	if err := msg.TermWithReason(kind); err != nil {
		log.Warn("term failed after dead-letter write", "err", err)
	}
	w.m.jobs.WithLabelValues("dead_lettered").Inc()
	w.m.deadLetters.WithLabelValues(kind).Inc()
	log.Error("run dead-lettered", "kind", kind, "err", cause)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

type metrics struct {
	jobs            *prometheus.CounterVec
	deadLetters     *prometheus.CounterVec
	inFlight        prometheus.Gauge
	catalogWrites   prometheus.Counter
	catalogFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archiver_jobs_total",
			Help: "Run events settled, by outcome (archived, retry, delayed, dead_lettered, handed_back).",
		}, []string{"outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archiver_dead_letters_total",
			Help: "Run events written to the dead-letter stream, by kind (permanent, max_deliveries).",
		}, []string{"kind"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "archiver_jobs_in_flight",
			Help: "Run events being processed by this worker.",
		}),
		catalogWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "archiver_catalog_writes_total",
			Help: "Catalogue files written after a manifest was committed.",
		}),
		catalogFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "archiver_catalog_write_failures_total",
			Help: "Catalogue files that could not be written after a manifest was committed (archivectl catalog rebuild repairs them).",
		}),
	}
	reg.MustRegister(m.jobs, m.deadLetters, m.inFlight, m.catalogWrites, m.catalogFailures)
	// Start every series at zero so that increase() sees the first event.
	for _, o := range []string{"archived", "retry", "delayed", "dead_lettered", "handed_back"} {
		m.jobs.WithLabelValues(o)
	}
	for _, k := range []string{"permanent", "max_deliveries"} {
		m.deadLetters.WithLabelValues(k)
	}
	return m
}
