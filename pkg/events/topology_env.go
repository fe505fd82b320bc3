package events

import (
	"fmt"

	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// TopologyEnv adds the variables of the streams (their names, subjects and
// sizes) to e, bound to t's fields with their defaults. Both the webhook
// and the worker provision the streams, so both read these.
func TopologyEnv(e *service.Env, t *Topology) {
	e.String(&t.Stream, "ARCHIVER_STREAM", DefaultStream, "run-event stream name")
	e.String(&t.DeadLetter, "ARCHIVER_DLQ_STREAM", DefaultDeadLetter, "dead-letter stream name")
	e.String(&t.Subjects.Prefix, "ARCHIVER_SUBJECT_PREFIX", DefaultSubjectPrefix,
		"subjects are `<prefix>.runs.<installation_id>.<repository_id>` (ids only: repository names may contain `.`)")
	e.Int(&t.Replicas, "ARCHIVER_STREAM_REPLICAS", DefaultReplicas, "stream replicas: 1 for development, 3 in production")
	e.Duration(&t.MaxAge, "ARCHIVER_STREAM_MAX_AGE", 0,
		"drop unprocessed events older than this. Leave it at 0: an expired job is a lost archive").DefaultText("`0` (never)")
	e.Bytes(&t.MaxBytes, "ARCHIVER_STREAM_MAX_BYTES", DefaultMaxBytes, "stream size bound: when the stream is full, the webhook answers 503 (DiscardNew)")
	e.Duration(&t.Duplicates, "ARCHIVER_DEDUP_WINDOW", DefaultDuplicates, "`Nats-Msg-Id` de-duplication window (GitHub's redelivery horizon)")
}

// ConsumerEnv adds the variables of the workers' consumer to e, bound to
// t's fields with their defaults.
func ConsumerEnv(e *service.Env, t *Topology) {
	e.String(&t.Consumer, "ARCHIVER_CONSUMER", DefaultConsumer, "durable worker consumer name")
	e.Duration(&t.AckWait, "ARCHIVER_ACK_WAIT", DefaultAckWait, "consumer AckWait. The worker heartbeats every AckWait/4")
	e.Int(&t.MaxDeliver, "ARCHIVER_MAX_DELIVER", DefaultMaxDeliver, "deliveries before a run is dead-lettered")
	e.Int(&t.MaxAckPending, "ARCHIVER_MAX_ACK_PENDING", DefaultMaxAckPending, "runs in flight across all workers")
}

// TopologyFromEnv reads the topology through getenv (the variables of
// [TopologyEnv] and [ConsumerEnv]); unset and zero values keep their
// defaults. It fails on a value that does not parse or a topology that
// breaks a rule of [Topology.Validate].
func TopologyFromEnv(getenv func(string) string) (Topology, error) {
	var t Topology
	var e service.Env
	TopologyEnv(&e, &t)
	ConsumerEnv(&e, &t)
	if err := e.Parse(getenv); err != nil {
		return Topology{}, fmt.Errorf("events: %w", err)
	}
	t = t.WithDefaults()
	return t, t.Validate()
}
