// Package webhook receives GitHub App webhook deliveries and turns every
// completed workflow run into a durable [runevent.RunCompleted] message in
// NATS JetStream. [Handler] serves POST /webhook; [Server] adds /healthz,
// /readyz and /metrics, the NATS connection, stream provisioning and
// graceful shutdown; [Main] is the binary.
//
// # Delivery semantics
//
// A delivery is acknowledged (2xx) only when nothing is lost by doing so:
//
//   - A workflow_run delivery with action "completed" that passes the
//     [Filter] is published with the message id "wr:<run_id>:<run_attempt>"
//     (see [runevent.MsgID]); the handler waits for JetStream's
//     acknowledgement and answers 202 with an [Accepted] body (delivery id,
//     stream sequence, duplicate flag). A redelivery of the same delivery,
//     or the same run attempt from a second hook, inside the stream's
//     duplicate window is acknowledged by JetStream as a duplicate and
//     answered 202 with "duplicate": true; it is not stored twice.
//   - If JetStream does not acknowledge within the publish timeout (NATS
//     down, stream full, slow cluster) the answer is 503, so that GitHub
//     records a failed delivery that can be redelivered (GitHub never
//     redelivers on its own: an operator, or a reconciler using the App's
//     hook deliveries API, does it within about three days). A
//     publish that timed out may still have been stored; its redelivery is
//     then a duplicate, which is harmless. The NATS connection has no
//     reconnect buffer, so a publish while disconnected fails at once
//     instead of being sent after the 503.
//   - The publish is not cancelled when GitHub hangs up, and SIGTERM lets
//     in-flight publishes finish before the process exits.
//   - ping answers 200. Any other event, any other workflow_run action,
//     and runs the Filter rejects answer 200 with status "ignored" and the
//     reason: redelivering them would not change anything.
//
// Only the compact event is published, never the raw body. The body is
// read with a size bound and parsed by [ParseWorkflowRun], which decodes
// only the fields of the event and skips the rest of the 20+ KB payload
// (the full decode is most of the cost on a small machine).
//
// # Memory
//
// A body is read before its signature can be checked, so what a request
// may hold is bounded whoever sends it. Its buffer starts at 4 KiB at most
// (or Content-Length, if smaller) and doubles as bytes arrive, never past
// Content-Length: a client that announces 25 MiB and sends one byte holds
// 4 KiB, not 25 MiB. Every buffer is charged, before it is allocated or
// grown, to one budget shared by all requests in flight
// (ARCHIVER_WEBHOOK_BODY_BYTES_IN_FLIGHT, 64 MiB by default); a request
// that would pass it gets 503. A body must arrive within the body timeout
// of its headers (ARCHIVER_WEBHOOK_BODY_TIMEOUT, 10 s, GitHub's own
// limit), so slow clients hold their share that long at most, and headers
// within ARCHIVER_WEBHOOK_READ_HEADER_TIMEOUT (10 s) and 64 KiB.
//
// # Errors
//
// Bad input is refused and counted; the server keeps serving:
//
//   - 401 Unauthorized: X-Hub-Signature-256 missing, malformed, or not the
//     HMAC-SHA256 of the body under any configured secret (see [Secrets];
//     several secrets allow rotation). A delivery signed only with SHA-1
//     (X-Hub-Signature) is unsigned. The response carries no detail.
//   - 400 Bad Request: no X-GitHub-Event, a form body without "payload",
//     a body that is not valid JSON or has fields of the wrong type, or a
//     completed run without repository id, owner, name or run id
//     ([ErrBadPayload]). Redelivering the same bytes would fail again.
//   - 413 Request Entity Too Large: a body over the configured maximum
//     (GitHub's 25 MiB by default).
//   - 415 Unsupported Media Type: a Content-Type other than
//     application/json or application/x-www-form-urlencoded.
//   - 405 Method Not Allowed: anything but POST.
//   - 408 Request Timeout: the body did not arrive within the body
//     timeout; the connection is closed. (Headers that do not arrive
//     within the header timeout close the connection without an answer.)
//   - 431 Request Header Fields Too Large: headers over 64 KiB (net/http's
//     answer, not counted).
//   - 503 Service Unavailable: the event was not stored (see above), or
//     (outcome overloaded) the body buffers of the requests in flight
//     already hold the budget; it carries Retry-After (the body timeout,
//     within which slow bodies release their share) and closes the
//     connection.
//
// Logs carry delivery_id, event, repo and run_id; never a secret, a
// signature or the body.
//
// # Metrics
//
// All metrics are registered on the registry given to [NewMetrics] (the
// binary serves its own registry on /metrics, not the default one). Labels
// have small fixed value sets, never a repository or an id.
//
//   - archiver_webhook_deliveries_total{event,outcome}: event is ping,
//     workflow_run, other or missing; outcome is one of accepted, duplicate,
//     ignored, ping, unauthorized, bad_request, too_large, unsupported,
//     unavailable, overloaded, timeout, bad_method.
//   - archiver_webhook_signature_failures_total{reason}: missing, malformed,
//     mismatch.
//   - archiver_webhook_ignored_total{reason}: event, action, or a filter
//     reason (repository_not_allowed, repository_denied, workflow, branch,
//     conclusion).
//   - archiver_webhook_publish_duration_seconds{result}: time to the
//     JetStream acknowledgement (ok) or failure (error).
//   - archiver_webhook_body_size_bytes: sizes of the bodies read.
//   - archiver_webhook_in_flight_requests: requests being handled.
//   - archiver_webhook_body_bytes_in_flight: bytes of body buffers held by
//     the requests being handled; archiver_webhook_body_bytes_in_flight_limit
//     is its bound.
package webhook
