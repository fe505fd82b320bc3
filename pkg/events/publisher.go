package events

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// Message headers set on every event.
const (
	HeaderDelivery = "X-GitHub-Delivery"
	HeaderSchema   = "Archiver-Schema"
	// Dead-letter headers.
	HeaderError       = "Archiver-Error"
	HeaderErrorKind   = "Archiver-Error-Kind"
	HeaderDeliveries  = "Archiver-Deliveries"
	HeaderOrigSubject = "Archiver-Original-Subject"
	HeaderOrigSeq     = "Archiver-Original-Sequence"
	HeaderFailedAt    = "Archiver-Failed-At"
)

// DefaultPublishTimeout bounds one publish: well under GitHub's 10 s webhook
// deadline, so a slow or absent JetStream becomes a 503, not a timeout.
const DefaultPublishTimeout = 5 * time.Second

// Publisher publishes run events and waits for JetStream's acknowledgement.
type Publisher struct {
	js      jetstream.JetStream
	topo    Topology
	timeout time.Duration
}

// NewPublisher returns a publisher for topology t. A zero timeout means
// [DefaultPublishTimeout].
func NewPublisher(js jetstream.JetStream, t Topology, timeout time.Duration) *Publisher {
	return &Publisher{js: js, topo: t.WithDefaults(), timeout: cmp.Or(timeout, DefaultPublishTimeout)}
}

// PublishResult is JetStream's acknowledgement of a stored event.
type PublishResult struct {
	Stream    string `json:"stream"`
	Sequence  uint64 `json:"sequence"`
	Duplicate bool   `json:"duplicate"`
}

// Publish stores e in the run stream with its run-attempt message id and
// returns once JetStream has acknowledged it. A duplicate (the same run
// attempt inside the duplicate window) is success with Duplicate set.
func (p *Publisher) Publish(ctx context.Context, e *runevent.RunCompleted) (PublishResult, error) {
	data, err := e.Encode()
	if err != nil {
		return PublishResult{}, err
	}
	msg := nats.NewMsg(p.topo.Subjects.Run(e))
	msg.Data = data
	msg.Header.Set(HeaderSchema, fmt.Sprint(e.SchemaVersion))
	if e.DeliveryID != "" {
		msg.Header.Set(HeaderDelivery, e.DeliveryID)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(e.MsgID()),
		jetstream.WithExpectStream(p.topo.Stream))
	if err != nil {
		return PublishResult{}, fmt.Errorf("events: publish run %d attempt %d: %w", e.WorkflowRun.ID, e.WorkflowRun.RunAttempt, err)
	}
	return PublishResult{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}
