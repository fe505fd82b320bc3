package archivectl_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
)

// redeliverReport mirrors redeliver --json.
type redeliverReport struct {
	DryRun       bool `json:"dry_run"`
	Listed       int  `json:"deliveries_listed"`
	Failed       int  `json:"failed_workflow_run_deliveries"`
	Redeliveries []struct {
		GUID       string `json:"guid"`
		DeliveryID int64  `json:"delivery_id"`
		Attempts   int    `json:"attempts"`
		Result     string `json:"result"`
	} `json:"redeliveries"`
}

func TestRedeliver(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := ghsim.New(ghsim.Options{AppID: 4242, AppPrivateKey: key, Tokens: []string{"ghp_x"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	// GITHUB_TOKEN is ignored: the /app endpoints need the App's JWT.
	ev := env{"GITHUB_API_URL": sim.URL(), "GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY_FILE": keyFile, "GITHUB_TOKEN": "ghp_x"}

	now := time.Now().UTC().Truncate(time.Second)
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	add := func(d ghsim.HookDelivery) ghsim.HookDelivery { return sim.AddHookDelivery(d) }
	failed := add(ghsim.HookDelivery{StatusCode: 502, DeliveredAt: at(10 * time.Hour), InstallationID: 77, RepositoryID: 100000001})
	add(ghsim.HookDelivery{StatusCode: 202, DeliveredAt: at(9 * time.Hour)})
	recovered := add(ghsim.HookDelivery{StatusCode: 503, DeliveredAt: at(8 * time.Hour)})
	add(ghsim.HookDelivery{GUID: recovered.GUID, Redelivery: true, StatusCode: 202, DeliveredAt: at(7 * time.Hour)})
	twice := add(ghsim.HookDelivery{StatusCode: 0, DeliveredAt: at(6 * time.Hour)})
	twiceRe := add(ghsim.HookDelivery{GUID: twice.GUID, Redelivery: true, StatusCode: 500, DeliveredAt: at(5 * time.Hour)})
	add(ghsim.HookDelivery{Event: "push", StatusCode: 500, DeliveredAt: at(4 * time.Hour)})
	add(ghsim.HookDelivery{Action: "requested", StatusCode: 500, DeliveredAt: at(4 * time.Hour)})
	add(ghsim.HookDelivery{StatusCode: 500, DeliveredAt: at(96 * time.Hour)}) // older than --since
	for i := range 150 {                                                      // more than one page
		add(ghsim.HookDelivery{StatusCode: 202, DeliveredAt: at(time.Duration(150-i) * time.Minute)})
	}

	rep := decode[redeliverReport](t, run(t, ev, "redeliver", "--dry-run", "--json").want(t, 0).stdout)
	if !rep.DryRun || rep.Failed != 2 || len(rep.Redeliveries) != 2 || rep.Listed != 158 {
		t.Fatalf("dry run: %+v, want 2 of 158 deliveries", rep)
	}
	if got := rep.Redeliveries; got[0].GUID != failed.GUID || got[1].GUID != twice.GUID || got[1].DeliveryID != twiceRe.ID ||
		got[1].Attempts != 2 || got[0].Result != "would redeliver" {
		t.Fatalf("dry run redeliveries %+v, want %s then %s (its latest attempt %d)", got, failed.GUID, twice.GUID, twiceRe.ID)
	}
	if n := sim.Stats().Count(ghsim.RouteRedeliver, 0); n != 0 {
		t.Fatalf("a dry run sent %d redeliveries", n)
	}

	r := run(t, ev, "redeliver").want(t, 0)
	mustContain(t, "redeliver", r.stdout, failed.GUID, twice.GUID, "redelivered", "158 deliveries since", "2 failed workflow_run deliveries, redelivered 2")
	if n := sim.Stats().Count(ghsim.RouteRedeliver, http.StatusAccepted); n != 2 {
		t.Fatalf("%d redeliveries accepted, want 2", n)
	}
	var redelivered []string
	for _, d := range sim.HookDeliveries() {
		if d.Redelivery && d.DeliveredAt.After(now.Add(-time.Minute)) {
			redelivered = append(redelivered, d.GUID)
		}
	}
	slices.Sort(redelivered)
	want := []string{failed.GUID, twice.GUID}
	slices.Sort(want)
	if !slices.Equal(redelivered, want) {
		t.Fatalf("redelivered %v, want %v", redelivered, want)
	}

	// The redeliveries succeeded: nothing is left to redeliver.
	r = run(t, ev, "redeliver").want(t, 0)
	mustContain(t, "second redeliver", r.stdout, "0 failed workflow_run deliveries")
	if n := sim.Stats().Count(ghsim.RouteRedeliver, 0); n != 2 {
		t.Fatalf("%d redelivery requests after the second run, want still 2", n)
	}

	// A rate limit on the list is waited out; a redelivery that fails is
	// reported with exit code 1.
	again := add(ghsim.HookDelivery{StatusCode: 504})
	sim.Inject(ghsim.RouteHookDeliveries, 1, ghsim.SecondaryLimit(http.StatusTooManyRequests, time.Second))
	sim.Inject(ghsim.RouteRedeliver, 1, ghsim.ServerError(http.StatusBadGateway))
	r = run(t, ev, "redeliver").want(t, archivectl.ExitFailure)
	mustContain(t, "rate-limited redeliver", r.stderr, "rate limited by GitHub while listing webhook deliveries")
	mustContain(t, "failed redeliver", r.stdout, again.GUID, "error", "502", "redelivered 0")

	run(t, env{"GITHUB_API_URL": sim.URL(), "GITHUB_TOKEN": "ghp_x"}, "redeliver").want(t, archivectl.ExitUsage)
	run(t, ev, "redeliver", "extra").want(t, archivectl.ExitUsage)
	run(t, ev, "redeliver", "--since", "soon").want(t, archivectl.ExitUsage)
}
