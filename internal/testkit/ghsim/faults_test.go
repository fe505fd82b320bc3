package ghsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
)

func TestStallFault(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	const size, after = 1 << 20, 64 << 10
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: size})
	other := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: size})
	full := readAll(t, ghsim.NewContent(a.Seed, size))
	e.s.Inject(ghsim.RouteBlob, 1, ghsim.Stall(after, time.Hour).ForArtifact(a.ID))

	// Another artifact's download passes the fault by.
	if resp, body := e.call(t, "GET", e.zipURL(t, other.ID), ""); resp.StatusCode != 200 || len(body) != size {
		t.Fatalf("download of another artifact: %d, %d bytes", resp.StatusCode, len(body))
	}

	// The stalled download: the head and the first bytes, then nothing
	// until the client gives up.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.zipURL(t, a.ID), nil)
	resp, err := e.plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
		t.Fatalf("head of the stalled response: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	head := make([]byte, after)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatalf("the bytes before the stall: %v", err)
	}
	if !bytes.Equal(head, full[:after]) {
		t.Fatal("the bytes before the stall are wrong")
	}
	got := make(chan int, 1)
	go func() {
		n, _ := resp.Body.Read(make([]byte, 1))
		got <- n
	}()
	select {
	case n := <-got:
		t.Fatalf("read %d more bytes during the stall", n)
	case <-time.After(300 * time.Millisecond): // a bounded look: nothing must come
	}
	cancel() // the client gives up: the stall ends with it
	if n := <-got; n != 0 {
		t.Fatalf("read %d bytes after giving up", n)
	}
	testserver.Eventually(t, 5*time.Second, "the bytes before the stall to be counted", func() bool {
		return e.s.Stats().BlobBytesByArtifact[a.ID] == after
	})
	st := e.s.Stats()
	if st.BlobBytesByArtifact[a.ID] != after || st.BlobRequestsByArtifact[a.ID] != 1 || st.BlobRequestsByArtifact[other.ID] != 1 {
		t.Fatalf("blob bytes %d (want %d), requests %v (want one each)", st.BlobBytesByArtifact[a.ID], after, st.BlobRequestsByArtifact)
	}

	// The fault fired once: the retry gets everything.
	if resp, body := e.call(t, "GET", e.zipURL(t, a.ID), ""); resp.StatusCode != 200 || !bytes.Equal(body, full) {
		t.Fatalf("download after the stall: %d, %d bytes", resp.StatusCode, len(body))
	}
	if n := e.s.Stats().BlobRequestsByArtifact[a.ID]; n != 2 {
		t.Fatalf("blob requests of the stalled artifact: %d, want 2", n)
	}
}

func TestStallFaultResumes(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	const size = 200 << 10
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: size})
	blob := e.zipURL(t, a.ID)
	// A stall past the end still cuts the body short: it comes before the
	// last byte.
	e.s.Inject(ghsim.RouteBlob, 1, ghsim.Stall(size*2, 200*time.Millisecond))
	began := time.Now()
	resp, body := e.call(t, "GET", blob, "")
	if took := time.Since(began); took < 200*time.Millisecond {
		t.Fatalf("a 200 ms stall took %s", took)
	}
	if resp.StatusCode != 200 || !bytes.Equal(body, readAll(t, ghsim.NewContent(a.Seed, size))) {
		t.Fatalf("download through a short stall: %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestFaultChecks(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	for _, tc := range []struct {
		name  string
		route ghsim.Route
		f     ghsim.Fault
	}{
		{"stall on the API", ghsim.RouteList, ghsim.Stall(1, time.Second)},
		{"stall without a duration", ghsim.RouteBlob, ghsim.Stall(1, 0)},
		{"stall before no byte", ghsim.RouteBlob, ghsim.Stall(-1, time.Second)},
		{"forbidden on the blob host", ghsim.RouteBlob, ghsim.Forbidden()},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Inject did not panic", tc.name)
				}
			}()
			e.s.Inject(tc.route, 1, tc.f)
		}()
	}
	// The scenario and admin JSON carry the stall's duration.
	b, err := json.Marshal(ghsim.ScenarioFault{Route: ghsim.RouteBlob, Count: 1, Fault: ghsim.Stall(5, 90*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ghsim.ParseScenario(strings.NewReader(`{"repos": [], "faults": [` + string(b) + `]}`))
	if err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	if f := sc.Faults[0].Fault; f.Kind != ghsim.FaultStall || f.Bytes != 5 || time.Duration(f.Duration) != 90*time.Second {
		t.Fatalf("stall fault round trip: %s → %+v", b, f)
	}
}

func TestForbiddenFault(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 10})
	b := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 10})
	zip := func(id int64) string { return fmt.Sprintf("repos/%s/%s/actions/artifacts/%d/zip", owner, repoName, id) }
	e.s.Inject(ghsim.RouteZip, -1, ghsim.Forbidden().ForArtifact(a.ID))
	e.s.Inject(ghsim.RouteDelete, 1, ghsim.Forbidden())
	for range 2 {
		resp, body := e.call(t, "GET", zip(a.ID), pat)
		var msg struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &msg)
		if resp.StatusCode != http.StatusForbidden || msg.Message != "Resource not accessible by integration" {
			t.Fatalf("zip of the forbidden artifact: %d %s", resp.StatusCode, body)
		}
		// Nothing says "wait": it is no rate limit.
		if resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-RateLimit-Remaining") == "0" {
			t.Fatalf("forbidden answer looks like a rate limit: %v", resp.Header)
		}
	}
	if resp, body := e.call(t, "GET", zip(b.ID), pat); resp.StatusCode != http.StatusFound {
		t.Fatalf("zip of another artifact: %d %s", resp.StatusCode, body)
	}
	// A fault limited to one artifact passes by routes about none.
	if resp, body := e.call(t, "GET", fmt.Sprintf("repos/%s/%s/actions/runs/%d/artifacts", owner, repoName, e.run.ID), pat); resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.call(t, "DELETE", fmt.Sprintf("repos/%s/%s/actions/artifacts/%d", owner, repoName, b.ID), pat); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("delete with a forbidden fault: %d", resp.StatusCode)
	}
	if e.s.Deleted(b.ID) {
		t.Fatal("a forbidden delete deleted the artifact")
	}
	e.s.ClearFaults()
	if resp, _ := e.call(t, "GET", zip(a.ID), pat); resp.StatusCode != http.StatusFound {
		t.Fatalf("zip after ClearFaults: %d", resp.StatusCode)
	}
	if st := e.s.Stats(); st.Count(ghsim.RouteZip, 403) != 2 || st.Count(ghsim.RouteDelete, 403) != 1 {
		t.Fatalf("counts %v", st.Requests)
	}
}

func TestMalformedDigest(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	a := e.s.AddArtifact(owner, repoName, e.run.ID, ghsim.ArtifactSpec{Size: 10, MalformedDigest: true})
	_, body := e.call(t, "GET", fmt.Sprintf("repos/%s/%s/actions/artifacts/%d", owner, repoName, a.ID), pat)
	if got := decode[artifact](t, body); got.Digest == nil || *got.Digest != ghsim.MalformedDigest {
		t.Fatalf("digest %v, want %q", got.Digest, ghsim.MalformedDigest)
	}
	if d, err := e.s.Digest(a.ID); err != nil || d != "sha256:zz" {
		t.Fatalf("Digest = %q, %v", d, err)
	}
	// The body is an ordinary one.
	if resp, blob := e.call(t, "GET", e.zipURL(t, a.ID), ""); resp.StatusCode != 200 || len(blob) != 10 {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(blob))
	}
}

func TestAttemptPayload(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{})
	run := e.s.AddRun(owner, repoName, ghsim.RunSpec{Attempt: 2})
	attemptOf := func(b []byte) int {
		t.Helper()
		var p struct {
			WorkflowRun struct {
				ID         int64 `json:"id"`
				RunAttempt int   `json:"run_attempt"`
			} `json:"workflow_run"`
		}
		if err := json.Unmarshal(b, &p); err != nil || p.WorkflowRun.ID != run.ID {
			t.Fatalf("payload of run %d: %v %.200s", p.WorkflowRun.ID, err, b)
		}
		return p.WorkflowRun.RunAttempt
	}
	for attempt, want := range map[int]int{0: 2, 1: 1, 2: 2} {
		b, err := e.s.AttemptPayload(owner, repoName, run.ID, attempt, installationID)
		if err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if got := attemptOf(b); got != want {
			t.Errorf("AttemptPayload(attempt %d): run_attempt %d, want %d", attempt, got, want)
		}
	}
	for _, attempt := range []int{-1, 3} {
		if _, err := e.s.AttemptPayload(owner, repoName, run.ID, attempt, installationID); !errors.Is(err, ghsim.ErrNotFound) {
			t.Errorf("attempt %d of 2: %v, want ErrNotFound", attempt, err)
		}
	}
}
