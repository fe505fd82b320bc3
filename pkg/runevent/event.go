package runevent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// SchemaVersion is the version of [RunCompleted] written by this build.
// Decoders accept any version up to this one and ignore unknown fields.
const SchemaVersion = 1

// ErrBadEvent marks an event that can never be processed (undecodable, wrong
// schema, missing identifiers). It is a permanent error.
var ErrBadEvent = errors.New("bad event")

// Sources of an event.
const (
	SourceWebhook  = "webhook"
	SourceBackfill = "backfill"
)

// RunCompleted says that a workflow run attempt has completed and its
// artifacts should be archived. It carries everything a worker needs without
// asking GitHub for the run's metadata again.
type RunCompleted struct {
	SchemaVersion  int         `json:"schema_version"`
	Source         string      `json:"source,omitempty"`
	DeliveryID     string      `json:"delivery_id,omitempty"`
	ReceivedAt     time.Time   `json:"received_at"`
	InstallationID int64       `json:"installation_id,omitempty"`
	Repository     Repository  `json:"repository"`
	WorkflowRun    WorkflowRun `json:"workflow_run"`
	WorkflowName   string      `json:"workflow_name,omitempty"`
	// Reopen lists the artifacts that a backfill found listed at GitHub but
	// not archived, for a run attempt that already has a manifest. Such an
	// event gets its own de-duplication id (see MsgID), so it is not dropped
	// as a duplicate of the attempt's first event; the worker lists the run
	// again and archives what the manifest lacks.
	Reopen []int64 `json:"reopen,omitempty"`
}

// Repository identifies the repository the run belongs to.
type Repository struct {
	ID       int64  `json:"id"`
	Owner    string `json:"owner"`
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	Private  bool   `json:"private"`
}

// WorkflowRun is the subset of GitHub's workflow_run object that the archive
// records in its manifest.
type WorkflowRun struct {
	ID         int64     `json:"id"`
	RunAttempt int       `json:"run_attempt"`
	WorkflowID int64     `json:"workflow_id,omitempty"`
	Name       string    `json:"name,omitempty"`
	Path       string    `json:"path,omitempty"`
	Event      string    `json:"event,omitempty"`
	HeadBranch string    `json:"head_branch,omitempty"`
	HeadSHA    string    `json:"head_sha,omitempty"`
	Conclusion string    `json:"conclusion,omitempty"`
	Status     string    `json:"status,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	HTMLURL    string    `json:"html_url,omitempty"`
	// PullRequests are the numbers of the run's pull requests, as GitHub
	// lists them (only those whose head is in the repository itself).
	PullRequests []int64 `json:"pull_requests,omitempty"`
}

// Validate reports why e cannot be processed, wrapping [ErrBadEvent].
func (e *RunCompleted) Validate() error {
	switch {
	case e.SchemaVersion < 1 || e.SchemaVersion > SchemaVersion:
		return fmt.Errorf("%w: schema_version %d not supported (1..%d)", ErrBadEvent, e.SchemaVersion, SchemaVersion)
	case e.Repository.Owner == "" || e.Repository.Name == "":
		return fmt.Errorf("%w: repository owner and name are required", ErrBadEvent)
	case e.Repository.ID <= 0:
		return fmt.Errorf("%w: repository.id is required", ErrBadEvent)
	case e.WorkflowRun.ID <= 0:
		return fmt.Errorf("%w: workflow_run.id is required", ErrBadEvent)
	case e.WorkflowRun.RunAttempt <= 0:
		return fmt.Errorf("%w: workflow_run.run_attempt must be >= 1", ErrBadEvent)
	}
	return nil
}

// MsgID is the JetStream de-duplication id of the event: one per run
// attempt, shared by webhook redeliveries, several hooks and backfills.
//
// A reopening event (Reopen set) has the id
// "wr:<run_id>:<run_attempt>:reopen:<hash of the sorted ids>", so the same
// backfill twice is still one message.
func (e *RunCompleted) MsgID() string {
	id := MsgID(e.WorkflowRun.ID, e.WorkflowRun.RunAttempt)
	if len(e.Reopen) == 0 {
		return id
	}
	ids := slices.Clone(e.Reopen)
	slices.Sort(ids)
	h := sha256.New()
	for _, a := range ids {
		h.Write(strconv.AppendInt(nil, a, 10))
		h.Write([]byte{','})
	}
	return id + ":reopen:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// MsgID returns the Nats-Msg-Id for a run attempt: "wr:<run_id>:<run_attempt>".
func MsgID(runID int64, attempt int) string {
	return "wr:" + strconv.FormatInt(runID, 10) + ":" + strconv.Itoa(attempt)
}

// Encode returns the event's JSON encoding.
func (e *RunCompleted) Encode() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("events: encode run %d: %w", e.WorkflowRun.ID, err)
	}
	return b, nil
}

// DecodeRunCompleted decodes and validates an event. Unknown fields are
// ignored so that older workers can read newer events of the same major
// schema. Every error wraps [ErrBadEvent].
func DecodeRunCompleted(data []byte) (*RunCompleted, error) {
	var e RunCompleted
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}
