// Package runevent is the contract between the webhook and the workers: the
// versioned [RunCompleted] event ("this workflow run attempt completed:
// archive its artifacts"), its JSON encoding and decoding, and its
// de-duplication id [MsgID]. It knows nothing of the transport (package
// events carries it over NATS JetStream), so the archive core can use it
// without depending on nats.go.
//
// Decoding tolerates unknown fields and accepts every schema version up to
// [SchemaVersion]; an event that can never be processed (undecodable, an
// unknown schema, missing identifiers) is [ErrBadEvent], a permanent error.
package runevent
