package events

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

func TestPublisherStoresAndDeduplicates(t *testing.T) {
	t.Parallel()
	_, _, js := jetStream(t)
	topo := Topology{}.WithDefaults()
	if err := ProvisionStreams(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(js, topo, 0)
	e := testEvent(1234, 1)
	res, err := p.Publish(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stream != DefaultStream || res.Sequence != 1 || res.Duplicate {
		t.Fatalf("first publish: %+v", res)
	}
	again := *e
	again.DeliveryID = "redelivery"
	res2, err := p.Publish(t.Context(), &again)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Duplicate || res2.Sequence != 1 {
		t.Fatalf("same run attempt again: %+v, want duplicate of sequence 1", res2)
	}

	s, err := js.Stream(t.Context(), DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "archiver.runs.42.1296269" || m.Header.Get(jetstream.MsgIDHeader) != "wr:1234:1" ||
		m.Header.Get(HeaderDelivery) != e.DeliveryID || m.Header.Get(HeaderSchema) != strconv.Itoa(runevent.SchemaVersion) {
		t.Fatalf("stored message: subject %q headers %v", m.Subject, m.Header)
	}
	got, err := runevent.DecodeRunCompleted(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("stored event\n got %+v\nwant %+v", *got, *e)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1", info.State.Msgs)
	}
}

func TestPublisherFailsWithoutStream(t *testing.T) {
	t.Parallel()
	_, _, js := jetStream(t)
	p := NewPublisher(js, Topology{}, time.Second)
	if _, err := p.Publish(t.Context(), testEvent(1, 1)); err == nil {
		t.Fatal("publish without a stream succeeded")
	}
}

// TestPublisherFailsFastWhenDisconnected: no reconnect buffer, so a publish
// while NATS is down fails at once instead of landing later.
func TestPublisherFailsFastWhenDisconnected(t *testing.T) {
	t.Parallel()
	ns, nc, js := jetStream(t)
	topo := Topology{}.WithDefaults()
	if err := ProvisionStreams(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	// Until the client has seen the connection drop, a publish goes to
	// the dead socket and can only time out; once it has, it must fail
	// at once.
	testserver.Eventually(t, 5*time.Second, "the client to see the server gone", func() bool { return !nc.IsConnected() })
	p := NewPublisher(js, topo, 3*time.Second)
	start := time.Now()
	_, err := p.Publish(t.Context(), testEvent(9, 1))
	if err == nil {
		t.Fatal("publish with NATS down succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("publish failed after %s (%v); want well before the 3s timeout", took, err)
	}
}

func TestPublisherFullStream(t *testing.T) {
	t.Parallel()
	_, _, js := jetStream(t)
	topo := Topology{MaxBytes: 2048}.WithDefaults()
	if err := ProvisionStreams(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(js, topo, time.Second)
	var err error
	for i := range 20 {
		if _, err = p.Publish(t.Context(), testEvent(int64(100+i), 1)); err != nil {
			break
		}
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("publishing into a full DiscardNew stream: %v, want a JetStream API error", err)
	}
	if !strings.Contains(apiErr.Description, "maximum bytes") {
		t.Errorf("full stream error %v, want maximum bytes exceeded", apiErr)
	}
}
