package runevent

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMsgID(t *testing.T) {
	t.Parallel()
	if got := MsgID(30433642, 1); got != "wr:30433642:1" {
		t.Fatalf("MsgID = %q", got)
	}
	e := testEvent(5, 3)
	if got := e.MsgID(); got != "wr:5:3" {
		t.Fatalf("event MsgID = %q", got)
	}
	// The delivery id is not part of the key: two deliveries of one run
	// attempt share it.
	other := testEvent(5, 3)
	other.DeliveryID, other.Source = "another-hook", SourceBackfill
	if other.MsgID() != e.MsgID() {
		t.Fatal("MsgID depends on delivery or source")
	}
}

func TestRunCompletedValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*RunCompleted)
		ok     bool
	}{
		{"valid", func(*RunCompleted) {}, true},
		{"schema 0", func(e *RunCompleted) { e.SchemaVersion = 0 }, false},
		{"schema from the future", func(e *RunCompleted) { e.SchemaVersion = SchemaVersion + 1 }, false},
		{"no owner", func(e *RunCompleted) { e.Repository.Owner = "" }, false},
		{"no name", func(e *RunCompleted) { e.Repository.Name = "" }, false},
		{"no run id", func(e *RunCompleted) { e.WorkflowRun.ID = 0 }, false},
		{"negative run id", func(e *RunCompleted) { e.WorkflowRun.ID = -1 }, false},
		{"attempt 0", func(e *RunCompleted) { e.WorkflowRun.RunAttempt = 0 }, false},
		{"no installation (repository hook)", func(e *RunCompleted) { e.InstallationID = 0 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := testEvent(1, 1)
			tt.mutate(e)
			err := e.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadEvent) {
				t.Fatalf("Validate = %v, want ErrBadEvent", err)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	e := testEvent(77, 2)
	e.WorkflowRun.HeadBranch, e.WorkflowName = "feature/ü", "CI"
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRunCompleted(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip\n got %+v\nwant %+v", *got, *e)
	}
}

func TestDecodeRunCompleted(t *testing.T) {
	t.Parallel()
	valid := `{"schema_version":1,"repository":{"id":1,"owner":"o","name":"r"},"workflow_run":{"id":2,"run_attempt":1}`
	tests := []struct {
		name string
		data string
		ok   bool
	}{
		{"minimal", valid + `}`, true},
		{"unknown fields from a newer writer", valid + `,"artifact_hint":["a"],"repository_extra":{"x":1}}`, true},
		{"not JSON", `{"schema_version":`, false},
		{"empty", ``, false},
		{"wrong type", `{"schema_version":"1"}`, false},
		{"newer schema", strings.Replace(valid, `"schema_version":1`, `"schema_version":2`, 1) + `}`, false},
		{"missing run", `{"schema_version":1,"repository":{"id":1,"owner":"o","name":"r"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := DecodeRunCompleted([]byte(tt.data))
			if tt.ok {
				if err != nil {
					t.Fatalf("Decode = %v", err)
				}
				if e.WorkflowRun.ID != 2 || e.Repository.Owner != "o" {
					t.Fatalf("decoded %+v", e)
				}
				return
			}
			if !errors.Is(err, ErrBadEvent) {
				t.Fatalf("Decode err = %v, want ErrBadEvent", err)
			}
		})
	}
}

func testEvent(runID int64, attempt int) *RunCompleted {
	return &RunCompleted{
		SchemaVersion: SchemaVersion, Source: SourceWebhook, DeliveryID: "d-" + MsgID(runID, attempt),
		ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), InstallationID: 42,
		Repository:  Repository{ID: 1296269, Owner: "octo.org", Name: "hello.world", FullName: "octo.org/hello.world"},
		WorkflowRun: WorkflowRun{ID: runID, RunAttempt: attempt, Name: "ci", Conclusion: "success"},
	}
}
