// Package worker consumes run events from the shared durable JetStream
// consumer and hands each to the archiver, mapping every outcome to one
// JetStream action.
//
// # Delivery semantics
//
// Each free slot pulls exactly one message (no prefetch: a buffered
// message's AckWait would already be running). While a run is archived the
// worker sends InProgress every AckWait/4, so multi-minute transfers keep
// their message. The outcome decides the action, in one place ([settle]):
//
//   - success: the manifest is durable → DoubleAck;
//   - permanent error (bad event, repository gone, no access) → dead-letter
//     record, then Term;
//   - rate limited / artifacts not listed yet → NakWithDelay until then;
//   - transient error → NakWithDelay with exponential backoff;
//   - the last allowed delivery (MaxDeliver) → the archiver records failed
//     artifacts in the manifest, then dead-letter and Term;
//   - shutdown → Nak, so another pod takes the run at once.
//
// A dead-letter record is written to the DLQ stream before Term; if that
// write fails the message is Naked instead, so nothing is lost.
//
// # Errors
//
// [Worker.Start] fails if the consumer does not exist. Job errors are
// logged once, where they are settled.
//
// # Metrics
//
// archiver_jobs_total{outcome}, archiver_dead_letters_total{kind},
// archiver_jobs_in_flight.
package worker
