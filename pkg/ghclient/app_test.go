package ghclient_test

import (
	"errors"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

func TestAppClientNeedsAppCredentials(t *testing.T) {
	t.Parallel()
	cs, err := ghclient.New(ghclient.Config{APIURL: "http://127.0.0.1:1/", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.App(); err == nil {
		t.Fatal("App() with a token succeeded")
	}
}

func TestRepoInstallation(t *testing.T) {
	t.Parallel()
	sim, cs := newAppSim(t)
	sim.AddRepo(77, "org", "repo")
	sim.AddRepo(0, "org", "not-installed")
	app, err := cs.App()
	if err != nil {
		t.Fatal(err)
	}
	if id, err := app.RepoInstallation(t.Context(), "org", "repo"); err != nil || id != 77 {
		t.Fatalf("installation of org/repo: %d, %v; want 77", id, err)
	}
	if _, err := app.RepoInstallation(t.Context(), "org", "not-installed"); !errors.Is(err, ghclient.ErrNotFound) {
		t.Fatalf("not installed: %v, want ErrNotFound", err)
	}
}

func TestHookDeliveriesSinceAndRedeliver(t *testing.T) {
	t.Parallel()
	sim, cs := newAppSim(t)
	now := time.Now().UTC().Truncate(time.Second)
	old := sim.AddHookDelivery(ghsim.HookDelivery{StatusCode: 500, DeliveredAt: now.Add(-80 * time.Hour)})
	var recent []ghsim.HookDelivery
	for i := range 150 {
		recent = append(recent, sim.AddHookDelivery(ghsim.HookDelivery{StatusCode: 200 + i%2*300, DeliveredAt: now.Add(-time.Duration(150-i) * time.Minute)}))
	}
	app, err := cs.App()
	if err != nil {
		t.Fatal(err)
	}
	got, err := app.ListHookDeliveries(t.Context(), now.Add(-72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 150 {
		t.Fatalf("%d deliveries in the last 72h, want 150", len(got))
	}
	for i, d := range got {
		w := recent[len(recent)-1-i]
		if d.ID != w.ID || d.GUID != w.GUID || d.StatusCode != w.StatusCode || d.OK() != (w.StatusCode == 200) ||
			d.Event != "workflow_run" || d.Action != "completed" || !d.DeliveredAt.Equal(w.DeliveredAt) {
			t.Fatalf("delivery %d: %+v, want %+v", i, d, w)
		}
	}
	if n := sim.Stats().Count(ghsim.RouteHookDeliveries, 200); n != 2 {
		t.Errorf("%d list requests, want 2 pages", n)
	}

	if err := app.RedeliverHookDelivery(t.Context(), old.ID); err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	if re := sim.HookDeliveries()[0]; !re.Redelivery || re.GUID != old.GUID {
		t.Fatalf("newest delivery %+v, want a redelivery of %s", re, old.GUID)
	}
	if err := app.RedeliverHookDelivery(t.Context(), 42); !errors.Is(err, ghclient.ErrNotFound) {
		t.Fatalf("redeliver unknown: %v, want ErrNotFound", err)
	}
}
