package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for [Topology].
const (
	DefaultStream         = "ARCHIVER_RUNS"
	DefaultDeadLetter     = "ARCHIVER_DLQ"
	DefaultConsumer       = "archiver-worker"
	DefaultReplicas       = 1
	DefaultDuplicates     = 72 * time.Hour
	DefaultMaxBytes       = 1 << 30
	DefaultAckWait        = 2 * time.Minute
	DefaultMaxDeliver     = 10
	DefaultMaxAckPending  = 1000
	DefaultDeadLetterAge  = 30 * 24 * time.Hour
	DefaultMaxMessageSize = 64 << 10
)

// Topology names and sizes the JetStream objects the archiver uses. The zero
// value is usable: every field has a default, applied by [Topology.WithDefaults].
type Topology struct {
	// Subjects is the subject layout (default prefix "archiver").
	Subjects Subjects
	// Stream is the work-queue stream of run events (default ARCHIVER_RUNS).
	Stream string
	// DeadLetter is the stream of dead-lettered events (default ARCHIVER_DLQ).
	DeadLetter string
	// Consumer is the durable pull consumer shared by every worker
	// (default archiver-worker).
	Consumer string
	// Replicas is the stream replication factor: 1 for development, 3 in
	// production (default 1).
	Replicas int
	// MaxAge bounds how long an unprocessed event is kept. Zero (the
	// default) keeps events until a worker acknowledges them: an expired job
	// is a silently lost archive.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size (default 1 GiB, about a million
	// events). When full, publishes fail (DiscardNew) and the webhook answers
	// 503 so that GitHub records a failed delivery instead of losing it.
	MaxBytes int64
	// Duplicates is the de-duplication window for Nats-Msg-Id (default 72h,
	// GitHub's manual redelivery horizon).
	Duplicates time.Duration
	// AckWait, MaxDeliver and MaxAckPending configure the worker consumer;
	// see [Topology.ConsumerConfig].
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int
}

// WithDefaults returns t with every zero field set to its default.
func (t Topology) WithDefaults() Topology {
	t.Subjects.Prefix = cmp.Or(t.Subjects.Prefix, DefaultSubjectPrefix)
	t.Stream = cmp.Or(t.Stream, DefaultStream)
	t.DeadLetter = cmp.Or(t.DeadLetter, DefaultDeadLetter)
	t.Consumer = cmp.Or(t.Consumer, DefaultConsumer)
	t.Replicas = cmp.Or(t.Replicas, DefaultReplicas)
	t.MaxBytes = cmp.Or(t.MaxBytes, DefaultMaxBytes)
	t.Duplicates = cmp.Or(t.Duplicates, DefaultDuplicates)
	t.AckWait = cmp.Or(t.AckWait, DefaultAckWait)
	t.MaxDeliver = cmp.Or(t.MaxDeliver, DefaultMaxDeliver)
	t.MaxAckPending = cmp.Or(t.MaxAckPending, DefaultMaxAckPending)
	return t
}

// Validate names the first field that breaks a rule.
func (t Topology) Validate() error {
	switch {
	case t.Replicas < 1 || t.Replicas > 5:
		return fmt.Errorf("events: replicas %d: want 1..5", t.Replicas)
	case t.MaxAge < 0:
		return fmt.Errorf("events: max age %s: must not be negative", t.MaxAge)
	case t.MaxAge > 0 && t.Duplicates > t.MaxAge:
		return fmt.Errorf("events: duplicate window %s must not exceed max age %s", t.Duplicates, t.MaxAge)
	case t.AckWait < 10*time.Second:
		return fmt.Errorf("events: ack wait %s: want >= 10s", t.AckWait)
	case t.MaxDeliver < 2:
		return fmt.Errorf("events: max deliver %d: want >= 2", t.MaxDeliver)
	case t.MaxAckPending < 1:
		return fmt.Errorf("events: max ack pending %d: want >= 1", t.MaxAckPending)
	}
	return nil
}

// StreamConfig is the configuration of the run-event stream.
func (t Topology) StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        t.Stream,
		Description: "artifact-archiver: completed workflow runs to archive",
		Subjects:    []string{t.Subjects.Runs()},
		// A message leaves the stream when a worker acks it, i.e. when the
		// run's manifest is durable.
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  t.Replicas,
		MaxAge:    t.MaxAge,
		MaxBytes:  t.MaxBytes,
		// Refuse new events when full: the publisher (and GitHub) sees the
		// failure instead of an old job vanishing.
		Discard:    jetstream.DiscardNew,
		MaxMsgSize: DefaultMaxMessageSize,
		Duplicates: t.Duplicates,
		// Dead-lettering Terms a message, which deletes it; keep deletes allowed.
		DenyDelete: false,
	}
}

// DeadLetterConfig is the configuration of the dead-letter stream. It is a
// limits stream: records stay until an operator replays or purges them, or
// DefaultDeadLetterAge passes.
func (t Topology) DeadLetterConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        t.DeadLetter,
		Description: "artifact-archiver: events that could not be archived, error in headers",
		Subjects: []string{
			t.Subjects.DeadLetters(),
			// Capture max-deliveries advisories so that nothing escapes
			// the dead-letter record even if a worker dies while writing it.
			"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + t.Stream + ".*",
		},
		Retention: jetstream.LimitsPolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  t.Replicas,
		MaxAge:    DefaultDeadLetterAge,
		Discard:   jetstream.DiscardOld,
	}
}

// ConsumerConfig is the durable pull consumer shared by every worker pod.
func (t Topology) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       t.Consumer,
		Description:   "artifact-archiver workers",
		FilterSubject: t.Subjects.Runs(),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		// A moderate AckWait with InProgress heartbeats every AckWait/4:
		// multi-minute transfers stay owned by their worker, and a dead
		// worker's job is redelivered within about two minutes. BackOff is
		// deliberately unset: it would replace AckWait on every attempt and
		// cut long transfers; retries use NakWithDelay instead.
		AckWait: t.AckWait,
		// After MaxDeliver attempts the worker dead-letters the event (and
		// the server emits a MAX_DELIVERIES advisory captured by the DLQ).
		MaxDeliver: t.MaxDeliver,
		// Bounds the jobs in flight across all pods; each pod pulls one
		// message per free slot.
		MaxAckPending: t.MaxAckPending,
		// Jobs are long: no prefetch. Each buffered message's AckWait would
		// already be running, so a pull asks for exactly one; a Consume()
		// with a default batch fails loudly instead of silently prefetching.
		MaxRequestBatch: 1,
	}
}

// Provision creates or updates the run stream, the dead-letter stream and
// the worker consumer. It is idempotent and safe to run from several pods at
// once: a lost creation race is retried as an update.
func Provision(ctx context.Context, js jetstream.JetStream, t Topology) error {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return err
	}
	for _, cfg := range []jetstream.StreamConfig{t.StreamConfig(), t.DeadLetterConfig()} {
		if err := ensureStream(ctx, js, cfg); err != nil {
			return err
		}
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, t.Stream, t.ConsumerConfig()); err != nil {
		return fmt.Errorf("events: provision consumer %s: %w", t.Consumer, err)
	}
	return nil
}

// ProvisionStreams creates or updates only the streams (what the webhook
// needs); the worker provisions the consumer.
func ProvisionStreams(ctx context.Context, js jetstream.JetStream, t Topology) error {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return err
	}
	for _, cfg := range []jetstream.StreamConfig{t.StreamConfig(), t.DeadLetterConfig()} {
		if err := ensureStream(ctx, js, cfg); err != nil {
			return err
		}
	}
	return nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	var err error
	for range 3 {
		if _, err = js.CreateOrUpdateStream(ctx, cfg); err == nil {
			return nil
		}
		// Another pod created it between our update and create: update again.
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			break
		}
	}
	return fmt.Errorf("events: provision stream %s: %w", cfg.Name, err)
}
