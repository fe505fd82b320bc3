package archivectl_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

// backfillReport mirrors backfill --json.
type backfillReport struct {
	DryRun       bool `json:"dry_run"`
	Repositories []struct {
		Repository     string `json:"repository"`
		InstallationID int64  `json:"installation_id"`
		Listed         int    `json:"artifacts_listed"`
		Expired        int    `json:"expired"`
		BeforeSince    int    `json:"before_since"`
		Archived       int    `json:"archived"`
		Missing        int    `json:"not_archived"`
		Error          string `json:"error"`
		Runs           []struct {
			RunID       int64   `json:"run_id"`
			RunAttempt  int     `json:"run_attempt"`
			ArtifactIDs []int64 `json:"artifact_ids"`
			MsgID       string  `json:"msg_id"`
			Result      string  `json:"result"`
			Sequence    uint64  `json:"stream_sequence"`
			Reason      string  `json:"reason"`
		} `json:"runs"`
	} `json:"repositories"`
}

// results maps run id to result for one repository of the report.
func (r backfillReport) results(t *testing.T, repo string) map[int64]string {
	t.Helper()
	for _, rp := range r.Repositories {
		if rp.Repository == repo {
			out := map[int64]string{}
			for _, run := range rp.Runs {
				out[run.RunID] = run.Result
			}
			return out
		}
	}
	t.Fatalf("report has no repository %s: %+v", repo, r)
	return nil
}

func TestBackfill(t *testing.T) {
	e := newS3Env(t)
	srv, js, topo := jetStream(t, true)
	ev := e.env.with("NATS_URL", srv.URL)
	sim := e.Sim
	appRepo := sim.AddRepo(77, "octo-org", "app")
	sim.AddRepo(77, "octo-org", "lib")
	sim.AddRepo(78, "other", "thing")
	sim.AddArtifact("other", "thing", sim.AddRun("other", "thing", ghsim.RunSpec{}).ID, ghsim.ArtifactSpec{})
	add := func(repo string, run ghsim.Run, n int, spec ghsim.ArtifactSpec) {
		for i := range n {
			spec.Name = "a" + strconv.Itoa(i)
			sim.AddArtifact("octo-org", repo, run.ID, spec)
		}
	}

	done := sim.AddRun("octo-org", "app", ghsim.RunSpec{})
	add("app", done, 2, ghsim.ArtifactSpec{Size: 100})
	archiveRun(t, e.Env, appRepo, done)
	missing := sim.AddRun("octo-org", "app", ghsim.RunSpec{Attempt: 2, Name: "Release", HeadBranch: "release/1"})
	add("app", missing, 3, ghsim.ArtifactSpec{Size: 1000})
	expired := sim.AddRun("octo-org", "app", ghsim.RunSpec{})
	add("app", expired, 100, ghsim.ArtifactSpec{Size: 10, Expired: true}) // a second page of the list
	old := sim.AddRun("octo-org", "app", ghsim.RunSpec{CreatedAt: time.Now().Add(-10 * 24 * time.Hour)})
	add("app", old, 1, ghsim.ArtifactSpec{Size: 10, CreatedAt: time.Now().Add(-10 * 24 * time.Hour).UTC()})
	running := sim.AddRun("octo-org", "app", ghsim.RunSpec{Status: "in_progress"})
	add("app", running, 1, ghsim.ArtifactSpec{Size: 10})
	late := sim.AddRun("octo-org", "app", ghsim.RunSpec{})
	sim.AddArtifact("octo-org", "app", late.ID, ghsim.ArtifactSpec{Name: "early", Size: 10})
	archiveRun(t, e.Env, appRepo, late)
	sim.AddArtifact("octo-org", "app", late.ID, ghsim.ArtifactSpec{Name: "late", Size: 10}) // after the manifest
	libRun := sim.AddRun("octo-org", "lib", ghsim.RunSpec{})
	add("lib", libRun, 1, ghsim.ArtifactSpec{Size: 10})

	// A dry run through a secondary rate limit: nothing is published.
	sim.Inject(ghsim.RouteList, 1, ghsim.SecondaryLimit(http.StatusTooManyRequests, time.Second))
	r := run(t, ev, "backfill", "octo-org/app", "--since", "7d", "--dry-run", "--json").want(t, 0)
	mustContain(t, "dry run", r.stderr, "rate limited by GitHub while listing artifacts of octo-org/app")
	rep := decode[backfillReport](t, r.stdout)
	app := rep.Repositories[0]
	if !rep.DryRun || len(rep.Repositories) != 1 || app.InstallationID != 77 || app.Listed != 109 || app.Expired != 100 ||
		app.BeforeSince != 1 || app.Archived != 3 || app.Missing != 5 {
		t.Fatalf("dry run report %+v", rep)
	}
	// The late artifact reopens its run's complete manifest.
	wantRuns := map[int64]string{missing.ID: "would enqueue", running.ID: "skipped", late.ID: "would enqueue"}
	if got := rep.results(t, "octo-org/app"); !mapsEqual(got, wantRuns) {
		t.Fatalf("dry run results %v, want %v", got, wantRuns)
	}
	for _, run := range app.Runs {
		if run.RunID == missing.ID && (run.RunAttempt != 2 || run.MsgID != runevent.MsgID(missing.ID, 2) || len(run.ArtifactIDs) != 3) {
			t.Fatalf("missing run %+v", run)
		}
		if run.RunID == late.ID && (!strings.HasPrefix(run.MsgID, runevent.MsgID(late.ID, 1)+":reopen:") || len(run.ArtifactIDs) != 1) {
			t.Fatalf("late run %+v, want a reopening message id for 1 artifact", run)
		}
	}
	if n := len(streamMsgs(t, js, topo.Stream)); n != 0 {
		t.Fatalf("a dry run published %d events", n)
	}
	// Without --since the old run is found too.
	r = run(t, ev, "backfill", "octo-org/app", "--dry-run").want(t, 0)
	mustContain(t, "dry run without --since", r.stdout, "run "+strconv.FormatInt(old.ID, 10)+" attempt 1, 1 artifact not archived: would enqueue",
		"in_progress", ":reopen:")

	// The real thing: the missing run with the webhook's message id, and
	// the late one reopened.
	r = run(t, ev, "backfill", "octo-org/app", "--since", "7d").want(t, 0)
	mustContain(t, "backfill", r.stdout, "enqueued", runevent.MsgID(missing.ID, 2), runevent.MsgID(late.ID, 1)+":reopen:")
	msgs := streamMsgs(t, js, topo.Stream)
	if len(msgs) != 2 {
		t.Fatalf("%d events published, want 2", len(msgs))
	}
	m := msgs[0]
	if id := msgs[1].Header.Get(jetstream.MsgIDHeader); !strings.HasPrefix(id, runevent.MsgID(late.ID, 1)+":reopen:") {
		t.Fatalf("second event's id %q, want a reopening id", id)
	}
	got, err := runevent.DecodeRunCompleted(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "archiver.runs.77."+strconv.FormatInt(appRepo.ID, 10) || m.Header.Get(jetstream.MsgIDHeader) != runevent.MsgID(missing.ID, 2) {
		t.Fatalf("published %s with id %q", m.Subject, m.Header.Get(jetstream.MsgIDHeader))
	}
	if got.Source != runevent.SourceBackfill || got.InstallationID != 77 || got.Repository.ID != appRepo.ID || got.Repository.FullName != "octo-org/app" ||
		got.WorkflowRun.ID != missing.ID || got.WorkflowRun.RunAttempt != 2 || got.WorkflowRun.HeadBranch != "release/1" ||
		got.WorkflowRun.HeadSHA != missing.HeadSHA || got.WorkflowName != "Release" || got.WorkflowRun.Status != "completed" {
		t.Fatalf("published event %+v", got)
	}

	// Again: the same message id is a duplicate; nothing new is stored.
	rep = decode[backfillReport](t, run(t, ev, "backfill", "octo-org/app", "--since", "7d", "--json").want(t, 0).stdout)
	if got := rep.results(t, "octo-org/app"); got[missing.ID] != "duplicate" || got[late.ID] != "duplicate" {
		t.Fatalf("second backfill: %v, want the missing and late runs as duplicates", got)
	}
	if n := len(streamMsgs(t, js, topo.Stream)); n != 2 {
		t.Fatalf("%d events after a duplicate backfill, want 2", n)
	}

	// The whole installation: the other repository too, not installation 78's.
	rep = decode[backfillReport](t, run(t, ev, "backfill", "--installation", "77", "--since", "7d", "--json").want(t, 0).stdout)
	var repos []string
	for _, rp := range rep.Repositories {
		repos = append(repos, rp.Repository)
	}
	if !slices.Equal(repos, []string{"octo-org/app", "octo-org/lib"}) {
		t.Fatalf("installation 77 backfilled %v", repos)
	}
	if got := rep.results(t, "octo-org/lib"); !mapsEqual(got, map[int64]string{libRun.ID: "enqueued"}) {
		t.Fatalf("lib results %v", got)
	}
	if n := len(streamMsgs(t, js, topo.Stream)); n != 3 {
		t.Fatalf("%d events after the installation backfill, want 3", n)
	}

	// A worker archives what was enqueued; then nothing is missing.
	startWorker(t, js, topo, e.Arch)
	testserver.Eventually(t, 60*time.Second, "the backfilled runs to be archived", func() bool { return len(streamMsgs(t, js, topo.Stream)) == 0 })
	mm := e.Manifest(t, "octo-org", "app", missing.ID, 2)
	e.CheckArchived(t, mm, e.RunArtifacts("octo-org", "app", missing.ID), nil)
	if mm.WorkflowRun.HeadBranch != "release/1" {
		t.Fatalf("manifest of the backfilled run: %+v", mm.WorkflowRun)
	}
	e.CheckArchived(t, e.Manifest(t, "octo-org", "lib", libRun.ID, 1), e.RunArtifacts("octo-org", "lib", libRun.ID), nil)
	e.CheckArchived(t, e.Manifest(t, "octo-org", "app", late.ID, 1), e.RunArtifacts("octo-org", "app", late.ID), nil)
	rep = decode[backfillReport](t, run(t, ev, "backfill", "--installation", "77", "--since", "7d", "--json").want(t, 0).stdout)
	if got := rep.results(t, "octo-org/app"); !mapsEqual(got, map[int64]string{running.ID: "skipped"}) {
		t.Fatalf("after archiving, app results %v", got)
	}
	if got := rep.results(t, "octo-org/lib"); len(got) != 0 {
		t.Fatalf("after archiving, lib results %v", got)
	}

	run(t, ev, "backfill").want(t, archivectl.ExitUsage)
	run(t, ev.with("GITHUB_TOKEN", "ghp_x"), "backfill", "--installation", "77").want(t, archivectl.ExitUsage)
	r = run(t, ev, "backfill", "octo-org/nope", "--dry-run").want(t, archivectl.ExitFailure)
	mustContain(t, "unknown repository", r.stdout, "octo-org/nope")
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
