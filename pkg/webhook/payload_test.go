package webhook

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := ghsim.SamplePayload(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseWorkflowRunSample(t *testing.T) {
	t.Parallel()
	got, err := ParseWorkflowRun(sample(t, "workflow_run.completed.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := WorkflowRun{
		Action: "completed",
		Event: runevent.RunCompleted{
			SchemaVersion: runevent.SchemaVersion,
			Source:        runevent.SourceWebhook,
			// The sample is a repository-hook delivery: no installation.
			InstallationID: 0,
			Repository:     runevent.Repository{ID: 300029405, Owner: "octo-org", Name: "octo-repo", FullName: "octo-org/octo-repo"},
			WorkflowRun: runevent.WorkflowRun{
				ID: 289782451, RunAttempt: 1, WorkflowID: 2823525,
				Name: "", Path: ".github/workflows/test.yml", Event: "repository_dispatch",
				HeadBranch: "master", HeadSHA: "3484a3fb816e0859fd6e1cea078d76385ff50625",
				Conclusion: "success", Status: "completed",
				CreatedAt: time.Date(2020, 10, 5, 16, 33, 24, 0, time.UTC),
				UpdatedAt: time.Date(2020, 10, 5, 16, 33, 49, 0, time.UTC),
				HTMLURL:   "https://github.com/octo-org/octo-repo/actions/runs/289782451",
			},
			WorkflowName: "test",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseWorkflowRun:\n got %+v\nwant %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestParseWorkflowRunPullRequests(t *testing.T) {
	t.Parallel()
	got, err := ParseWorkflowRun(sample(t, "workflow_run.completed.with-pull-requests.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	if prs := got.Event.WorkflowRun.PullRequests; !reflect.DeepEqual(prs, []int64{2}) {
		t.Errorf("pull requests %v, want [2]", prs)
	}
	got, err = ParseWorkflowRun(sample(t, "workflow_run.completed.payload.json"))
	if err != nil || got.Event.WorkflowRun.PullRequests != nil {
		t.Errorf("a run without pull requests: %v, %v", got.Event.WorkflowRun.PullRequests, err)
	}
}

func TestParseWorkflowRunRendered(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	body, err := ghsim.WorkflowRunPayload(ghsim.RunPayload{
		InstallationID: 4242, RepoID: 77, Owner: "acme", Repo: "rocket.engine", Private: true,
		RunID: 9_000_000_001, RunAttempt: 3, WorkflowName: "release", WorkflowPath: ".github/workflows/release.yml",
		Event: "push", HeadBranch: "main", HeadSHA: "abc123", Conclusion: "failure",
		CreatedAt: created, UpdatedAt: created.Add(time.Minute), PullRequests: []int64{31, 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseWorkflowRun(body)
	if err != nil {
		t.Fatal(err)
	}
	e := got.Event
	if e.InstallationID != 4242 || e.Repository.ID != 77 || e.Repository.Owner != "acme" ||
		e.Repository.Name != "rocket.engine" || e.Repository.FullName != "acme/rocket.engine" || !e.Repository.Private {
		t.Errorf("repository fields: %+v installation %d", e.Repository, e.InstallationID)
	}
	r := e.WorkflowRun
	if r.ID != 9_000_000_001 || r.RunAttempt != 3 || r.Name != "release" || r.Path != ".github/workflows/release.yml" ||
		r.Event != "push" || r.HeadBranch != "main" || r.HeadSHA != "abc123" || r.Conclusion != "failure" ||
		!r.CreatedAt.Equal(created) || !r.UpdatedAt.Equal(created.Add(time.Minute)) ||
		r.HTMLURL != "https://github.com/acme/rocket.engine/actions/runs/9000000001" {
		t.Errorf("workflow_run fields: %+v", r)
	}
	if !reflect.DeepEqual(r.PullRequests, []int64{31, 5}) {
		t.Errorf("pull requests %v, want [31 5]", r.PullRequests)
	}
	if e.WorkflowName != "release" || got.Action != "completed" {
		t.Errorf("workflow name %q action %q", e.WorkflowName, got.Action)
	}
}

func TestParseWorkflowRunCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		wantErr bool
		check   func(t *testing.T, r WorkflowRun)
	}{
		{name: "empty", body: "", wantErr: true},
		{name: "whitespace only", body: " \n", wantErr: true},
		{name: "top-level null", body: "null", check: func(t *testing.T, r WorkflowRun) {
			if r.Action != "" || r.Event.WorkflowRun.ID != 0 {
				t.Errorf("got %+v", r)
			}
		}},
		{name: "top-level array", body: "[]", wantErr: true},
		{name: "top-level string", body: `"x"`, wantErr: true},
		{name: "truncated", body: `{"action":"completed","workflow_run":{"id":1`, wantErr: true},
		{name: "trailing garbage", body: `{"action":"completed"} x`, wantErr: true},
		{name: "two values", body: `{} {}`, wantErr: true},
		{name: "bad literal in skipped field", body: `{"sender":{"site_admin":tru},"action":"completed"}`, wantErr: true},
		{name: "bad number in skipped field", body: `{"sender":{"id":01},"action":"completed"}`, wantErr: true},
		{name: "control char in skipped string", body: "{\"sender\":\"a\x01b\"}", wantErr: true},
		{name: "bad escape in skipped string", body: `{"sender":"a\qb"}`, wantErr: true},
		{name: "missing comma in skipped array", body: `{"sender":[1 2]}`, wantErr: true},
		{name: "trailing comma", body: `{"sender":[1,2,],"action":"completed"}`, wantErr: true},
		{name: "id as string", body: `{"workflow_run":{"id":"1"}}`, wantErr: true},
		{name: "id fractional", body: `{"workflow_run":{"id":1.5}}`, wantErr: true},
		{name: "id overflow", body: `{"workflow_run":{"id":92233720368547758070}}`, wantErr: true},
		{name: "repository as array", body: `{"repository":[]}`, wantErr: true},
		{name: "private as string", body: `{"repository":{"private":"yes"}}`, wantErr: true},
		{name: "bad created_at", body: `{"workflow_run":{"created_at":"yesterday"}}`, wantErr: true},
		{name: "nulls leave fields empty", body: `{"action":null,"installation":null,"repository":{"id":null,"owner":null},"workflow_run":{"conclusion":null,"created_at":null,"run_attempt":null}}`,
			check: func(t *testing.T, r WorkflowRun) {
				if r.Event.InstallationID != 0 || r.Event.Repository.ID != 0 || r.Event.WorkflowRun.RunAttempt != 1 || !r.Event.WorkflowRun.CreatedAt.IsZero() {
					t.Errorf("got %+v", r.Event)
				}
			}},
		{name: "case-insensitive keys and escapes", body: `{"ACTION":"completed","Workflow_Run":{"\u0069d":7,"Run_Attempt":2,"head_branch":"f\u00e9ature\/x"}}`,
			check: func(t *testing.T, r WorkflowRun) {
				if r.Action != "completed" || r.Event.WorkflowRun.ID != 7 || r.Event.WorkflowRun.RunAttempt != 2 || r.Event.WorkflowRun.HeadBranch != "féature/x" {
					t.Errorf("got %+v", r)
				}
			}},
		{name: "last duplicate wins, objects merge", body: `{"workflow_run":{"id":1},"workflow_run":{"run_attempt":4},"action":"a","action":"completed"}`,
			check: func(t *testing.T, r WorkflowRun) {
				if r.Action != "completed" || r.Event.WorkflowRun.ID != 1 || r.Event.WorkflowRun.RunAttempt != 4 {
					t.Errorf("got %+v", r)
				}
			}},
		{name: "null resets an object", body: `{"installation":{"id":5},"installation":null}`,
			check: func(t *testing.T, r WorkflowRun) {
				if r.Event.InstallationID != 0 {
					t.Errorf("installation %d", r.Event.InstallationID)
				}
			}},
		{name: "pull request numbers", body: `{"workflow_run":{"pull_requests":[{"number":2,"head":{"ref":"x"}},{"url":"u","number":7}]}}`,
			check: func(t *testing.T, r WorkflowRun) {
				if got := r.Event.WorkflowRun.PullRequests; !reflect.DeepEqual(got, []int64{2, 7}) {
					t.Errorf("pull requests %v, want [2 7]", got)
				}
			}},
		{name: "pull requests empty or null", body: `{"workflow_run":{"pull_requests":[{"number":3}],"pull_requests":null}}`,
			check: func(t *testing.T, r WorkflowRun) {
				if got := r.Event.WorkflowRun.PullRequests; got != nil {
					t.Errorf("pull requests %v, want none", got)
				}
			}},
		{name: "pull request number as string", body: `{"workflow_run":{"pull_requests":[{"number":"2"}]}}`, wantErr: true},
		{name: "pull requests as object", body: `{"workflow_run":{"pull_requests":{}}}`, wantErr: true},
		{name: "deep nesting within limit", body: `{"sender":` + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + `}`},
		{name: "nesting beyond encoding/json's limit", body: `{"sender":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseWorkflowRun([]byte(tt.body))
			if tt.wantErr {
				if !errors.Is(err, ErrBadPayload) {
					t.Fatalf("err = %v, want ErrBadPayload", err)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			// encoding/json must agree on accept/reject.
			var ref wirePayload
			if refErr := json.Unmarshal([]byte(tt.body), &ref); (refErr != nil) != tt.wantErr {
				t.Errorf("json.Unmarshal err = %v, but wantErr = %v", refErr, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func TestWorkflowRunValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"complete", `{"repository":{"id":1,"name":"r","owner":{"login":"o"}},"workflow_run":{"id":2,"run_attempt":1}}`, true},
		{"no run id", `{"repository":{"id":1,"name":"r","owner":{"login":"o"}},"workflow_run":{"run_attempt":1}}`, false},
		{"no workflow_run", `{"repository":{"id":1,"name":"r","owner":{"login":"o"}}}`, false},
		{"no repository", `{"workflow_run":{"id":2}}`, false},
		{"no repository id", `{"repository":{"name":"r","owner":{"login":"o"}},"workflow_run":{"id":2}}`, false},
		{"no owner", `{"repository":{"id":1,"name":"r"},"workflow_run":{"id":2}}`, false},
		{"negative attempt", `{"repository":{"id":1,"name":"r","owner":{"login":"o"}},"workflow_run":{"id":2,"run_attempt":-1}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseWorkflowRun([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			err = r.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadPayload) {
				t.Fatalf("Validate() = %v, want ErrBadPayload", err)
			}
		})
	}
}

// fuzzSeeds are the real payload shapes plus mutations of them.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, name := range []string{
		"workflow_run.completed.payload.json",
		"workflow_run.completed.with-pull-requests.payload.json",
		"workflow_run.requested.payload.json",
		"ping.payload.json",
		"ping.with-app_id.payload.json",
	} {
		seeds = append(seeds, sample(t, name))
	}
	app, err := ghsim.WorkflowRunPayload(ghsim.RunPayload{InstallationID: 99, RunID: 5, RunAttempt: 2, Owner: "o", Repo: "r.x"})
	if err != nil {
		t.Fatal(err)
	}
	base := string(seeds[0])
	seeds = append(seeds, app,
		[]byte(base[:len(base)/2]), // truncated
		[]byte(strings.Replace(base, `"id": 289782451`, `"id": "289782451"`, 1)),
		[]byte(strings.Replace(base, `"id": 289782451`, `"id": null`, 1)),
		[]byte(strings.Replace(base, `"run_attempt": 1`, `"run_attempt": 1e3`, 1)),
		[]byte(strings.Replace(base, `"action": "completed"`, `"Action": "completed", "installation": {"id": 7}`, 1)),
		[]byte(strings.Replace(base, `"conclusion": "success"`, `"conclusion": "succ\u00e9ss\ud800"`, 1)),
		[]byte(strings.Replace(base, `"repository": {`, `"repository": null, "x": {`, 1)),
		[]byte(`{"action":"completed","repository":{"id":1,"name":"r","owner":{"login":"o"}},"workflow_run":{"id":2}}`),
		[]byte(`{"workflow_run":{"created_at":"2020-10-05T16:33:24+02:00","updated_at":{}}}`),
		[]byte(`null`), []byte(`{`), []byte(`[{"a":-0.0e+1}]`), []byte("{\"a\":\"\xff\"}"),
	)
	return seeds
}

// FuzzParseWorkflowRun holds the scanner to json.Unmarshal: the same bodies
// are accepted with the same field values, nothing panics, and an accepted
// completed run that passes Validate is a valid event.
func FuzzParseWorkflowRun(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got wirePayload
		err := decodeWire(body, &got)
		var want wirePayload
		wantErr := json.Unmarshal(body, &want)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("scanner err = %v, json.Unmarshal err = %v\nbody: %q", err, wantErr, body)
		}
		if err != nil {
			if _, perr := ParseWorkflowRun(body); !errors.Is(perr, ErrBadPayload) {
				t.Fatalf("ParseWorkflowRun err = %v, want ErrBadPayload", perr)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanner and json.Unmarshal disagree\n got %s\nwant %s\nbody: %q", dump(got), dump(want), body)
		}
		r, err := ParseWorkflowRun(body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Validate() == nil {
			ev := r.Event
			if err := ev.Validate(); err != nil {
				t.Fatalf("accepted event does not validate: %v", err)
			}
			data, err := ev.Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := runevent.DecodeRunCompleted(data)
			if err != nil {
				t.Fatalf("accepted event does not round-trip: %v", err)
			}
			if back.MsgID() != ev.MsgID() {
				t.Fatalf("msg id %s != %s", back.MsgID(), ev.MsgID())
			}
		}
	})
}

func dump(w wirePayload) string {
	b, _ := json.Marshal(w)
	return string(b)
}

func BenchmarkParseWorkflowRun(b *testing.B) {
	body, err := ghsim.WorkflowRunPayload(ghsim.RunPayload{InstallationID: 1, RunID: 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("scanner", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseWorkflowRun(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal-small-struct", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var w wirePayload
			if err := json.Unmarshal(body, &w); err != nil {
				b.Fatal(err)
			}
		}
	})
}
