// Package events is the NATS transport of run events between the webhook
// and the workers: the subject layout, the JetStream stream and consumer
// configuration (and their provisioning), the connection, and a small
// [Publisher]. The event itself (the schema, its encoding and its message
// id) is package runevent, which has no NATS dependency, so the archive
// core does not pull in nats.go.
//
// # Delivery semantics
//
// The webhook publishes one message per completed workflow run attempt and
// answers GitHub with a 2xx only after JetStream has acknowledged (stored) it.
// Every message carries the Nats-Msg-Id "wr:<run_id>:<run_attempt>" (see
// runevent.MsgID), so that within the stream's duplicate window
//
//   - a delivery GitHub redelivers (same X-GitHub-Delivery), and
//   - the same run attempt delivered by two hooks (an org hook and a repository
//     hook, or a backfill)
//
// become a single message. The delivery id travels in the
// "X-GitHub-Delivery" header and in the event for tracing.
//
// After the duplicate window (and, on a work-queue stream, after a server
// restart, which forgets acknowledged ids) the same run can be enqueued
// again. That is safe by design: the worker is idempotent per artifact
// (deterministic keys, conditional writes, verified objects are skipped and
// the manifest is written last), so a second message costs a few GitHub list
// requests and S3 HEADs, never a second copy.
//
// The stream uses work-queue retention: a message is removed when a worker
// acknowledges it, which the worker does only after the run's manifest is
// durable. Messages are never expired by age unless an operator sets a max
// age, because silent expiry of a job is data loss; the stream is bounded by
// size with DiscardNew instead, so an overload shows up as a failed (503)
// delivery that can be redelivered rather than a lost event.
//
// # Errors
//
// [Publisher.Publish] returns an error whenever the message was not
// acknowledged by JetStream within the publish timeout; callers must then
// report failure upstream (the webhook answers 503). A duplicate
// acknowledgement is success. runevent.DecodeRunCompleted returns
// runevent.ErrBadEvent for payloads a worker can never process (permanent
// errors).
//
// # Metrics
//
// This package exports no metrics; the webhook and the worker count publishes
// and consumption next to their own code.
package events
