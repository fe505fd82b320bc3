package events

import (
	"fmt"
	"strconv"
	"time"
)

// TopologyEnv lists the environment variables read by [TopologyFromEnv],
// for -h.
var TopologyEnv = [][2]string{
	{"ARCHIVER_STREAM", "run-event stream name (default " + DefaultStream + ")"},
	{"ARCHIVER_DLQ_STREAM", "dead-letter stream name (default " + DefaultDeadLetter + ")"},
	{"ARCHIVER_CONSUMER", "durable worker consumer name (default " + DefaultConsumer + ")"},
	{"ARCHIVER_SUBJECT_PREFIX", "subject prefix (default " + DefaultSubjectPrefix + ")"},
	{"ARCHIVER_STREAM_REPLICAS", "stream replicas: 1 dev, 3 production (default 1)"},
	{"ARCHIVER_STREAM_MAX_AGE", "drop unprocessed events older than this (default 0 = never)"},
	{"ARCHIVER_STREAM_MAX_BYTES", "stream size bound; full → webhook answers 503 (default 1073741824)"},
	{"ARCHIVER_DEDUP_WINDOW", "Nats-Msg-Id duplicate window (default 72h)"},
	{"ARCHIVER_ACK_WAIT", "consumer AckWait; heartbeats every AckWait/4 (default 2m)"},
	{"ARCHIVER_MAX_DELIVER", "deliveries before dead-lettering (default 10)"},
	{"ARCHIVER_MAX_ACK_PENDING", "runs in flight across all workers (default 1000)"},
}

// TopologyFromEnv reads the topology settings through getenv; unset
// variables keep their defaults.
func TopologyFromEnv(getenv func(string) string) (Topology, error) {
	t := Topology{
		Subjects:   Subjects{Prefix: getenv("ARCHIVER_SUBJECT_PREFIX")},
		Stream:     getenv("ARCHIVER_STREAM"),
		DeadLetter: getenv("ARCHIVER_DLQ_STREAM"),
		Consumer:   getenv("ARCHIVER_CONSUMER"),
	}
	var err error
	ints := []struct {
		name string
		dst  *int
	}{
		{"ARCHIVER_STREAM_REPLICAS", &t.Replicas},
		{"ARCHIVER_MAX_DELIVER", &t.MaxDeliver},
		{"ARCHIVER_MAX_ACK_PENDING", &t.MaxAckPending},
	}
	for _, v := range ints {
		if s := getenv(v.name); s != "" {
			if *v.dst, err = strconv.Atoi(s); err != nil {
				return Topology{}, fmt.Errorf("events: %s=%q: not an integer", v.name, s)
			}
		}
	}
	durs := []struct {
		name string
		dst  *time.Duration
	}{
		{"ARCHIVER_STREAM_MAX_AGE", &t.MaxAge},
		{"ARCHIVER_DEDUP_WINDOW", &t.Duplicates},
		{"ARCHIVER_ACK_WAIT", &t.AckWait},
	}
	for _, v := range durs {
		if s := getenv(v.name); s != "" {
			if *v.dst, err = time.ParseDuration(s); err != nil {
				return Topology{}, fmt.Errorf("events: %s=%q: not a duration", v.name, s)
			}
		}
	}
	if s := getenv("ARCHIVER_STREAM_MAX_BYTES"); s != "" {
		if t.MaxBytes, err = strconv.ParseInt(s, 10, 64); err != nil {
			return Topology{}, fmt.Errorf("events: ARCHIVER_STREAM_MAX_BYTES=%q: not an integer", s)
		}
	}
	t = t.WithDefaults()
	return t, t.Validate()
}
