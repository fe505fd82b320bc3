package main

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// runRaw publishes the compact event synchronously from o.conns
// goroutines with distinct message ids: the bound for the webhook.
func runRaw(ctx context.Context, o options, js jetstream.JetStream, topo events.Topology, g *generator, natsPID int) (phaseResult, error) {
	subject := topo.Subjects.Run(&runevent.RunCompleted{InstallationID: 4242, Repository: runevent.Repository{ID: 777}})
	return window(ctx, o, natsPID, func(_ int, stop func() bool, measure func(time.Duration, string)) error {
		for !stop() {
			id := g.runID()
			msg := nats.NewMsg(subject)
			msg.Data = g.event
			msg.Header.Set(events.HeaderSchema, "1")
			msg.Header.Set(events.HeaderDelivery, "loadgen-"+strconv.FormatInt(id, 10))
			pctx, cancel := context.WithTimeout(ctx, events.DefaultPublishTimeout)
			start := time.Now()
			ack, err := js.PublishMsg(pctx, msg, jetstream.WithMsgID(runevent.MsgID(id, 1)), jetstream.WithExpectStream(topo.Stream))
			d := time.Since(start)
			cancel()
			switch {
			case err != nil:
				measure(d, "publish error")
			case ack.Duplicate:
				measure(d, "dup")
			default:
				measure(d, "ok")
			}
		}
		return nil
	})
}
