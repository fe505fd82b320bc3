package events

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestTopologyWithDefaults(t *testing.T) {
	t.Parallel()
	d := Topology{}.WithDefaults()
	if d.Subjects.Prefix != "archiver" || d.Stream != "ARCHIVER_RUNS" || d.DeadLetter != "ARCHIVER_DLQ" ||
		d.Consumer != "archiver-worker" || d.Replicas != 1 || d.MaxAge != 0 || d.MaxBytes != 1<<30 ||
		d.Duplicates != 72*time.Hour || d.AckWait != 2*time.Minute || d.MaxDeliver != 10 || d.MaxAckPending != 1000 {
		t.Fatalf("defaults: %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	custom := Topology{Stream: "S", Replicas: 3, MaxBytes: 5}.WithDefaults()
	if custom.Stream != "S" || custom.Replicas != 3 || custom.MaxBytes != 5 {
		t.Fatalf("WithDefaults overwrote set fields: %+v", custom)
	}
}

func TestTopologyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Topology)
		field  string // "" means valid
	}{
		{"defaults", func(*Topology) {}, ""},
		{"three replicas", func(t *Topology) { t.Replicas = 3 }, ""},
		{"zero replicas", func(t *Topology) { t.Replicas = 0 }, "replicas"},
		{"six replicas", func(t *Topology) { t.Replicas = 6 }, "replicas"},
		{"negative max age", func(t *Topology) { t.MaxAge = -time.Second }, "max age"},
		{"max age above dedup window", func(t *Topology) { t.MaxAge = 96 * time.Hour }, ""},
		{"dedup window above max age", func(t *Topology) { t.MaxAge = time.Hour }, "duplicate window"},
		{"short ack wait", func(t *Topology) { t.AckWait = 9 * time.Second }, "ack wait"},
		{"max deliver 1", func(t *Topology) { t.MaxDeliver = 1 }, "max deliver"},
		{"max ack pending 0", func(t *Topology) { t.MaxAckPending = 0 }, "max ack pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			topo := Topology{}.WithDefaults()
			tt.mutate(&topo)
			err := topo.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate = %v, want an error naming %q", err, tt.field)
			}
		})
	}
}

func TestStreamConfigs(t *testing.T) {
	t.Parallel()
	topo := Topology{Subjects: Subjects{Prefix: "x"}}.WithDefaults()
	sc := topo.StreamConfig()
	if sc.Retention != jetstream.WorkQueuePolicy || sc.Discard != jetstream.DiscardNew || sc.Storage != jetstream.FileStorage ||
		len(sc.Subjects) != 1 || sc.Subjects[0] != "x.runs.>" || sc.Duplicates != 72*time.Hour || sc.DenyDelete || sc.MaxAge != 0 {
		t.Errorf("run stream config: %+v", sc)
	}
	dl := topo.DeadLetterConfig()
	if dl.Retention != jetstream.LimitsPolicy || dl.Subjects[0] != "x.dlq.>" ||
		dl.Subjects[1] != "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ARCHIVER_RUNS.*" {
		t.Errorf("dead-letter config: %+v", dl)
	}
	cc := topo.ConsumerConfig()
	if cc.MaxRequestBatch != 1 || cc.AckPolicy != jetstream.AckExplicitPolicy || len(cc.BackOff) != 0 || cc.FilterSubject != "x.runs.>" {
		t.Errorf("consumer config: %+v", cc)
	}
}

func TestProvisionIdempotent(t *testing.T) {
	t.Parallel()
	_, _, js := jetStream(t)
	topo := Topology{}
	for i := range 3 {
		if err := Provision(t.Context(), js, topo); err != nil {
			t.Fatalf("Provision #%d: %v", i+1, err)
		}
	}
	s, err := js.Stream(t.Context(), DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Retention != jetstream.WorkQueuePolicy || info.Config.Discard != jetstream.DiscardNew || info.Config.Duplicates != DefaultDuplicates {
		t.Errorf("stream as provisioned: %+v", info.Config)
	}
	if _, err := js.Stream(t.Context(), DefaultDeadLetter); err != nil {
		t.Errorf("dead-letter stream: %v", err)
	}
	c, err := js.Consumer(t.Context(), DefaultStream, DefaultConsumer)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	if c.CachedInfo().Config.MaxRequestBatch != 1 {
		t.Errorf("consumer MaxRequestBatch %d, want 1", c.CachedInfo().Config.MaxRequestBatch)
	}

	// A changed setting is applied to the existing stream.
	if err := Provision(t.Context(), js, Topology{MaxBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	info, err = s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxBytes != 64<<20 {
		t.Errorf("MaxBytes after update %d, want %d", info.Config.MaxBytes, 64<<20)
	}
}

// TestProvisionConcurrent provisions from several "pods" at once.
func TestProvisionConcurrent(t *testing.T) {
	t.Parallel()
	_, _, js := jetStream(t)
	const pods = 8
	errs := make([]error, pods)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range pods {
		wg.Go(func() {
			<-start
			if i%2 == 0 {
				errs[i] = Provision(t.Context(), js, Topology{})
			} else {
				errs[i] = ProvisionStreams(t.Context(), js, Topology{})
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent provisioning: %v", err)
	}
	names := map[string]int{}
	for n := range js.StreamNames(t.Context()).Name() {
		names[n]++
	}
	if len(names) != 2 || names[DefaultStream] != 1 || names[DefaultDeadLetter] != 1 {
		t.Fatalf("streams after concurrent provisioning: %v", names)
	}
	if _, err := js.Consumer(t.Context(), DefaultStream, DefaultConsumer); err != nil {
		t.Fatalf("consumer: %v", err)
	}
}

func TestProvisionStreamsCreatesNoConsumer(t *testing.T) {
	t.Parallel()
	_, _, js := jetStream(t)
	if err := ProvisionStreams(t.Context(), js, Topology{}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Consumer(t.Context(), DefaultStream, DefaultConsumer); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer lookup after ProvisionStreams: %v, want not found", err)
	}
}

func TestProvisionRejectsInvalidTopology(t *testing.T) {
	t.Parallel()
	_, _, js := jetStream(t)
	if err := Provision(t.Context(), js, Topology{Replicas: 9}); err == nil {
		t.Fatal("Provision accepted 9 replicas")
	}
	if err := ProvisionStreams(t.Context(), js, Topology{MaxAge: time.Minute}); err == nil {
		t.Fatal("ProvisionStreams accepted a dedup window longer than max age")
	}
	if _, err := js.Stream(t.Context(), DefaultStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("an invalid topology created the stream: %v", err)
	}
}

func TestTopologyFromEnvReadsStreamSettings(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"ARCHIVER_STREAM_REPLICAS":  "3",
		"ARCHIVER_STREAM_MAX_AGE":   "240h",
		"ARCHIVER_STREAM_MAX_BYTES": "1048576",
		"ARCHIVER_DEDUP_WINDOW":     "1h",
	}
	topo, err := TopologyFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if topo.Replicas != 3 || topo.MaxAge != 240*time.Hour || topo.MaxBytes != 1<<20 || topo.Duplicates != time.Hour || topo.Stream != DefaultStream {
		t.Fatalf("topology %+v", topo)
	}
	env["ARCHIVER_STREAM_MAX_BYTES"] = "1GiB"
	if _, err := TopologyFromEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "ARCHIVER_STREAM_MAX_BYTES") {
		t.Fatalf("bad max bytes: %v", err)
	}
}
