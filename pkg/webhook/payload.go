package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// ErrBadPayload marks a delivery body that is not valid JSON, has a field of
// the wrong type, or lacks the identifiers of a completed run. The handler
// answers 400: GitHub's redelivery would send the same bytes again.
var ErrBadPayload = errors.New("bad payload")

// The wire types are the part of a workflow_run delivery that the webhook
// reads. Their JSON tags document the shape; ParseWorkflowRun fills them with
// its own scanner, and the tests check it against json.Unmarshal into these
// very types.
type (
	wirePayload struct {
		Action       string            `json:"action"`
		Installation *wireInstallation `json:"installation"`
		Repository   *wireRepository   `json:"repository"`
		Workflow     *wireWorkflow     `json:"workflow"`
		WorkflowRun  *wireRun          `json:"workflow_run"`
	}
	wireInstallation struct {
		ID int64 `json:"id"`
	}
	wireRepository struct {
		ID       int64      `json:"id"`
		Owner    *wireOwner `json:"owner"`
		Name     string     `json:"name"`
		FullName string     `json:"full_name"`
		Private  bool       `json:"private"`
	}
	wireOwner struct {
		Login string `json:"login"`
	}
	wireWorkflow struct {
		Name string `json:"name"`
	}
	wireRun struct {
		ID         int64     `json:"id"`
		RunAttempt int       `json:"run_attempt"`
		WorkflowID int64     `json:"workflow_id"`
		Name       string    `json:"name"`
		Path       string    `json:"path"`
		Event      string    `json:"event"`
		HeadBranch string    `json:"head_branch"`
		HeadSHA    string    `json:"head_sha"`
		Conclusion string    `json:"conclusion"`
		Status     string    `json:"status"`
		CreatedAt  time.Time `json:"created_at"`
		UpdatedAt  time.Time `json:"updated_at"`
		HTMLURL    string    `json:"html_url"`
		// PullRequests are the run's pull requests; only their numbers
		// are kept.
		PullRequests []wirePullRequest `json:"pull_requests"`
	}
	wirePullRequest struct {
		Number int64 `json:"number"`
	}
)

// WorkflowRun is what the webhook reads from a workflow_run delivery.
type WorkflowRun struct {
	// Action is the delivery's action ("requested", "in_progress",
	// "completed").
	Action string
	// Event is the run as an event, with SchemaVersion and Source set;
	// DeliveryID and ReceivedAt are the caller's to fill.
	Event runevent.RunCompleted
}

// ParseWorkflowRun reads a workflow_run delivery body. It decodes only the
// fields of [runevent.RunCompleted] and skips the rest of the (typically
// 20+ KB) payload without building it, while still rejecting any body that
// is not valid JSON. It accepts exactly the bodies json.Unmarshal accepts,
// with the same field semantics (case-insensitive keys, last duplicate
// wins, null leaves a field empty).
//
// A missing installation (a repository or organization hook) gives
// installation id 0, and a missing run_attempt (older GitHub Enterprise
// Server payloads) gives attempt 1. Every error wraps [ErrBadPayload]. The
// result is not validated: a "requested" run, for example, may lack fields
// that a completed one must have; see [WorkflowRun.Validate].
func ParseWorkflowRun(body []byte) (WorkflowRun, error) {
	var w wirePayload
	if err := decodeWire(body, &w); err != nil {
		return WorkflowRun{}, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	return w.workflowRun(), nil
}

// Validate reports why a completed run cannot be published, wrapping
// [ErrBadPayload].
func (r *WorkflowRun) Validate() error {
	if r.Event.Repository.ID <= 0 {
		return fmt.Errorf("%w: repository.id is required", ErrBadPayload)
	}
	if err := r.Event.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	return nil
}

func (w *wirePayload) workflowRun() WorkflowRun {
	e := runevent.RunCompleted{SchemaVersion: runevent.SchemaVersion, Source: runevent.SourceWebhook}
	if w.Installation != nil {
		e.InstallationID = w.Installation.ID
	}
	if r := w.Repository; r != nil {
		e.Repository = runevent.Repository{ID: r.ID, Name: r.Name, FullName: r.FullName, Private: r.Private}
		if r.Owner != nil {
			e.Repository.Owner = r.Owner.Login
		}
		if e.Repository.FullName == "" && e.Repository.Owner != "" && e.Repository.Name != "" {
			e.Repository.FullName = e.Repository.Owner + "/" + e.Repository.Name
		}
	}
	if w.Workflow != nil {
		e.WorkflowName = w.Workflow.Name
	}
	if r := w.WorkflowRun; r != nil {
		e.WorkflowRun = runevent.WorkflowRun{
			ID: r.ID, RunAttempt: r.RunAttempt, WorkflowID: r.WorkflowID,
			Name: r.Name, Path: r.Path, Event: r.Event,
			HeadBranch: r.HeadBranch, HeadSHA: r.HeadSHA,
			Conclusion: r.Conclusion, Status: r.Status,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, HTMLURL: r.HTMLURL,
		}
		for _, pr := range r.PullRequests {
			e.WorkflowRun.PullRequests = append(e.WorkflowRun.PullRequests, pr.Number)
		}
		if e.WorkflowRun.RunAttempt == 0 {
			e.WorkflowRun.RunAttempt = 1
		}
	}
	if e.WorkflowName == "" {
		e.WorkflowName = e.WorkflowRun.Name
	}
	return WorkflowRun{Action: w.Action, Event: e}
}

// decodeWire fills w from body with json.Unmarshal's semantics.
func decodeWire(body []byte, w *wirePayload) error {
	s := &jsonScanner{data: body}
	switch s.peek() {
	case 'n': // json.Unmarshal accepts a top-level null as "no fields"
		if _, err := s.literal(); err != nil {
			return err
		}
		return s.end()
	case 0:
		return errUnexpectedEnd
	}
	present, err := s.object("payload", func(k []byte) error {
		switch string(s.fold(k)) {
		case "action":
			return s.string("action", &w.Action)
		case "installation":
			return decodeInto(s, "installation", &w.Installation, func(d *wireInstallation, k []byte) error {
				if string(s.fold(k)) == "id" {
					return s.int("installation.id", &d.ID, 64)
				}
				return s.skip()
			})
		case "repository":
			return decodeInto(s, "repository", &w.Repository, func(d *wireRepository, k []byte) error {
				return d.member(s, k)
			})
		case "workflow":
			return decodeInto(s, "workflow", &w.Workflow, func(d *wireWorkflow, k []byte) error {
				if string(s.fold(k)) == "name" {
					return s.string("workflow.name", &d.Name)
				}
				return s.skip()
			})
		case "workflow_run":
			return decodeInto(s, "workflow_run", &w.WorkflowRun, func(d *wireRun, k []byte) error {
				return d.member(s, k)
			})
		}
		return s.skip()
	})
	if err != nil {
		return err
	}
	if !present {
		return typeError("payload object", nil)
	}
	return s.end()
}

// decodeInto decodes an object into *dst (allocating it on first use and
// merging later duplicates, as encoding/json does), or sets it to nil on
// null.
func decodeInto[T any](s *jsonScanner, field string, dst **T, member func(d *T, k []byte) error) error {
	if s.peek() == '{' && *dst == nil {
		*dst = new(T)
	}
	d := *dst
	present, err := s.object(field, func(k []byte) error { return member(d, k) })
	if err != nil {
		return err
	}
	if !present {
		*dst = nil
	}
	return nil
}

func (d *wireRepository) member(s *jsonScanner, k []byte) error {
	switch string(s.fold(k)) {
	case "id":
		return s.int("repository.id", &d.ID, 64)
	case "owner":
		return decodeInto(s, "repository.owner", &d.Owner, func(o *wireOwner, k []byte) error {
			if string(s.fold(k)) == "login" {
				return s.string("repository.owner.login", &o.Login)
			}
			return s.skip()
		})
	case "name":
		return s.string("repository.name", &d.Name)
	case "full_name":
		return s.string("repository.full_name", &d.FullName)
	case "private":
		return s.bool("repository.private", &d.Private)
	}
	return s.skip()
}

func (d *wireRun) member(s *jsonScanner, k []byte) error {
	switch string(s.fold(k)) {
	case "id":
		return s.int("workflow_run.id", &d.ID, 64)
	case "run_attempt":
		n := int64(d.RunAttempt)
		if err := s.int("workflow_run.run_attempt", &n, strconv.IntSize); err != nil {
			return err
		}
		d.RunAttempt = int(n)
		return nil
	case "workflow_id":
		return s.int("workflow_run.workflow_id", &d.WorkflowID, 64)
	case "name":
		return s.string("workflow_run.name", &d.Name)
	case "path":
		return s.string("workflow_run.path", &d.Path)
	case "event":
		return s.string("workflow_run.event", &d.Event)
	case "head_branch":
		return s.string("workflow_run.head_branch", &d.HeadBranch)
	case "head_sha":
		return s.string("workflow_run.head_sha", &d.HeadSHA)
	case "conclusion":
		return s.string("workflow_run.conclusion", &d.Conclusion)
	case "status":
		return s.string("workflow_run.status", &d.Status)
	case "created_at":
		return s.time("workflow_run.created_at", &d.CreatedAt)
	case "updated_at":
		return s.time("workflow_run.updated_at", &d.UpdatedAt)
	case "html_url":
		return s.string("workflow_run.html_url", &d.HTMLURL)
	case "pull_requests":
		// A short array of small objects: decoded by encoding/json itself,
		// into the same slice, so its semantics (null, duplicates) hold.
		raw, err := s.value()
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &d.PullRequests); err != nil {
			return fmt.Errorf("workflow_run.pull_requests: %w", err)
		}
		return nil
	}
	return s.skip()
}
