package archivectl_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// attestBackfillReport mirrors the attestation parts of backfill --json.
type attestBackfillReport struct {
	Attestations bool `json:"attestations"`
	Repositories []struct {
		Archived   int `json:"archived"`
		Missing    int `json:"not_archived"`
		Unattested int `json:"without_attestations"`
		Runs       []struct {
			RunID       int64   `json:"run_id"`
			RunAttempt  int     `json:"run_attempt"`
			ArtifactIDs []int64 `json:"artifact_ids"`
			Unattested  []int64 `json:"without_attestations"`
			MsgID       string  `json:"msg_id"`
			Result      string  `json:"result"`
			Reason      string  `json:"reason"`
		} `json:"runs"`
	} `json:"repositories"`
}

// TestBackfillAttestations archives runs with attestation lookups on
// (one whose lookups fail, one archived with lookups off, one recorded in
// an earlier attempt's manifest only, one settled), has backfill
// --attestations enqueue the unsettled ones as reopening events, and a real
// worker look their attestations up again.
func TestBackfillAttestations(t *testing.T) {
	e := newS3Env(t)
	srv, js, topo := jetStream(t, true)
	ev := e.env.with("NATS_URL", srv.URL)
	sim := e.Sim
	cfg := e.Config
	cfg.Attestations = true
	attesting, err := archive.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	archiveWith := func(a *archive.Archiver, ev *runevent.RunCompleted) *archive.Manifest {
		t.Helper()
		res, err := a.ArchiveRun(t.Context(), ev, true)
		if err != nil {
			t.Fatalf("archive run %d: %v", ev.WorkflowRun.ID, err)
		}
		return res.Manifest
	}
	repo := sim.AddRepo(77, "octo-org", "app")
	const slsa = "https://slsa.dev/provenance/v1"
	// attested adds an artifact that GitHub has one attestation for.
	attested := func(run ghsim.Run, name string) int64 {
		t.Helper()
		a := sim.AddArtifact("octo-org", "app", run.ID, ghsim.ArtifactSpec{Name: name, Size: 200})
		h := sha256.Sum256(content(t, sim, a.ID))
		stmt := base64.StdEncoding.EncodeToString([]byte(`{"predicateType":"` + slsa + `","subject":[{"name":"` + name + `"}]}`))
		bundle := `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payload":"` + stmt + `"}}`
		if _, err := sim.AddAttestation("octo-org", "app", hex.EncodeToString(h[:]), []byte(bundle), slsa); err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	lookupFailed := func(m *archive.Manifest) bool {
		return slices.ContainsFunc(m.Artifacts, func(r archive.ArtifactRecord) bool {
			return r.Attestations != nil && strings.Contains(r.Attestations.Error, "403")
		})
	}

	// Both lookups of this run fail (403); the run is archived anyway.
	failed := sim.AddRun("octo-org", "app", ghsim.RunSpec{})
	failedIDs := []int64{attested(failed, "dist"), attested(failed, "sbom")}
	sim.Inject(ghsim.RouteAttestations, 2, ghsim.Forbidden())
	if m := archiveWith(attesting, archivetest.Event(repo, failed)); !m.Complete || !lookupFailed(m) {
		t.Fatalf("failed run's manifest %+v, want complete with failed lookups", m)
	}
	// Archived with lookups off: no lookup recorded; the artifact without
	// a digest is never looked up.
	never := sim.AddRun("octo-org", "app", ghsim.RunSpec{})
	neverID := attested(never, "dist")
	sim.AddArtifact("octo-org", "app", never.ID, ghsim.ArtifactSpec{Name: "legacy", Size: 10, NoDigest: true})
	archiveRun(t, e.Env, repo, never)
	// Re-run once: attempt 1's manifest records the artifact with a failed
	// lookup, the latest attempt has no manifest yet.
	rerun := sim.AddRun("octo-org", "app", ghsim.RunSpec{Attempt: 2})
	rerunID := attested(rerun, "dist")
	first := archivetest.Event(repo, rerun)
	first.WorkflowRun.RunAttempt = 1
	sim.Inject(ghsim.RouteAttestations, 1, ghsim.Forbidden())
	if m := archiveWith(attesting, first); !lookupFailed(m) {
		t.Fatalf("attempt 1 of the re-run: %+v, want a failed lookup", m.Artifacts)
	}
	// Settled: found, and GitHub has none.
	settled := sim.AddRun("octo-org", "app", ghsim.RunSpec{})
	attested(settled, "dist")
	sim.AddArtifact("octo-org", "app", settled.ID, ghsim.ArtifactSpec{Name: "logs", Size: 10})
	archiveWith(attesting, archivetest.Event(repo, settled))

	// Without --attestations, nothing is missing: nothing to enqueue.
	rep := decode[attestBackfillReport](t, run(t, ev, "backfill", "octo-org/app", "--dry-run", "--json").want(t, 0).stdout)
	if rep.Attestations || len(rep.Repositories) != 1 || len(rep.Repositories[0].Runs) != 0 || rep.Repositories[0].Unattested != 0 {
		t.Fatalf("backfill without --attestations: %+v", rep)
	}

	// With it, the three unsettled runs, reopened at their latest attempt.
	type want struct {
		attempt int
		ids     []int64
		reason  string
	}
	wants := map[int64]want{
		failed.ID: {1, failedIDs, "attestation lookup failed for 2 artifacts ("},
		never.ID:  {1, []int64{neverID}, "no attestation lookup for 1 artifact"},
		rerun.ID:  {2, []int64{rerunID}, "attestation lookup failed for 1 artifact ("},
	}
	check := func(what string, rep attestBackfillReport, result string) {
		t.Helper()
		r := rep.Repositories[0]
		if !rep.Attestations || r.Archived != 7 || r.Missing != 0 || r.Unattested != 4 || len(r.Runs) != len(wants) {
			t.Fatalf("%s: %+v", what, rep)
		}
		for _, run := range r.Runs {
			w, ok := wants[run.RunID]
			slices.Sort(w.ids)
			if !ok || run.RunAttempt != w.attempt || len(run.ArtifactIDs) != 0 || !slices.Equal(run.Unattested, w.ids) ||
				!strings.HasPrefix(run.MsgID, runevent.MsgID(run.RunID, w.attempt)+":reopen:") || run.Result != result ||
				(result != "duplicate" && !strings.HasPrefix(run.Reason, w.reason)) {
				t.Fatalf("%s: run %+v, want %+v and %s", what, run, w, result)
			}
		}
	}
	check("dry run", decode[attestBackfillReport](t, run(t, ev, "backfill", "octo-org/app", "--attestations", "--dry-run", "--json").want(t, 0).stdout), "would enqueue")
	if n := len(streamMsgs(t, js, topo.Stream)); n != 0 {
		t.Fatalf("a dry run published %d events", n)
	}
	r := run(t, ev, "backfill", "octo-org/app", "--attestations").want(t, 0)
	mustContain(t, "backfill --attestations", r.stdout, "0 not archived, 4 without attestations in 3 runs",
		"run "+strconv.FormatInt(failed.ID, 10)+" attempt 1, 2 artifacts without attestations: enqueued",
		"run "+strconv.FormatInt(rerun.ID, 10)+" attempt 2, 1 artifact without attestations: enqueued", "attestation lookup failed for 2 artifacts (")
	msgs := streamMsgs(t, js, topo.Stream)
	if len(msgs) != 3 {
		t.Fatalf("%d events published, want 3", len(msgs))
	}
	for _, m := range msgs {
		got, err := runevent.DecodeRunCompleted(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		w := wants[got.WorkflowRun.ID]
		if got.Source != runevent.SourceBackfill || got.WorkflowRun.RunAttempt != w.attempt || !slices.Equal(got.Reopen, w.ids) {
			t.Fatalf("published %+v, want attempt %d reopening %v", got, w.attempt, w.ids)
		}
	}
	check("again", decode[attestBackfillReport](t, run(t, ev, "backfill", "octo-org/app", "--attestations", "--json").want(t, 0).stdout), "duplicate")

	// A worker with lookups on retries them: every record now has its
	// attestations, stored.
	lookups := sim.Stats().Count(ghsim.RouteAttestations, 0)
	startWorker(t, js, topo, attesting)
	testserver.Eventually(t, 60*time.Second, "the reopened runs to be handled", func() bool { return len(streamMsgs(t, js, topo.Stream)) == 0 })
	if n := sim.Stats().Count(ghsim.RouteAttestations, 0) - lookups; n != 4 {
		t.Errorf("the worker made %d attestation lookups, want 4", n)
	}
	for runID, w := range wants {
		m := e.Manifest(t, "octo-org", "app", runID, w.attempt)
		for _, id := range w.ids {
			i := slices.IndexFunc(m.Artifacts, func(r archive.ArtifactRecord) bool { return r.ID == id })
			if i < 0 {
				t.Fatalf("run %d attempt %d: manifest lacks artifact %d", runID, w.attempt, id)
			}
			a := m.Artifacts[i].Attestations
			if a == nil || a.Error != "" || a.Count != 1 || a.Key == "" || !slices.Equal(a.PredicateTypes, []string{slsa}) {
				t.Fatalf("run %d artifact %d: attestations %+v, want 1 stored", runID, id, a)
			}
			if b := e.Read(t, a.Key); !strings.Contains(string(b), "application/vnd.dev.sigstore.bundle") {
				t.Fatalf("%s: %q", a.Key, b)
			}
		}
	}
	rep = decode[attestBackfillReport](t, run(t, ev, "backfill", "octo-org/app", "--attestations", "--json").want(t, 0).stdout)
	if r := rep.Repositories[0]; r.Unattested != 0 || len(r.Runs) != 0 {
		t.Fatalf("after the worker: %+v", rep)
	}
}
