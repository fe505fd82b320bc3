package ghsim_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v66/github"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

func TestHookDeliveriesCursorPagination(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{AppID: appID, AppPublicKey: &appKey().PublicKey})
	var added []ghsim.HookDelivery
	for i := range 45 {
		code := http.StatusAccepted
		if i%10 == 3 {
			code = http.StatusServiceUnavailable
		}
		added = append(added, e.s.AddHookDelivery(ghsim.HookDelivery{StatusCode: code, InstallationID: installationID, RepositoryID: e.repo.ID}))
	}
	push := e.s.AddHookDelivery(ghsim.HookDelivery{Event: "push", StatusCode: 0})
	if push.Status != "failed to connect to host" || push.Action != "" || added[3].Status != "Invalid HTTP Response: 503" || added[0].Status != "OK" {
		t.Fatalf("derived statuses %q %q %q", push.Status, added[3].Status, added[0].Status)
	}

	app := e.appClient(t)
	opts := &github.ListCursorOptions{PerPage: 20}
	var got []*github.HookDelivery
	var sizes []int
	for {
		page, resp, err := app.Apps.ListHookDeliveries(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page))
		got = append(got, page...)
		if resp.Cursor == "" {
			break
		}
		opts.Cursor = resp.Cursor
	}
	if len(sizes) != 3 || sizes[0] != 20 || sizes[2] != 6 || len(got) != 46 {
		t.Fatalf("page sizes %v, %d deliveries; want 20,20,6", sizes, len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].GetID() >= got[i-1].GetID() {
			t.Fatalf("deliveries not newest first at %d: %d then %d", i, got[i-1].GetID(), got[i].GetID())
		}
	}
	first := got[len(got)-1]
	if first.GetID() != added[0].ID || first.GetGUID() != added[0].GUID || first.GetEvent() != "workflow_run" ||
		first.GetAction() != "completed" || first.GetStatusCode() != 202 || first.GetInstallationID() != installationID ||
		first.GetRepositoryID() != e.repo.ID || first.GetRedelivery() || first.DeliveredAt == nil {
		t.Fatalf("oldest delivery %v, want %+v", first, added[0])
	}

	// The App's JWT is required.
	if _, _, err := e.gh.Apps.ListHookDeliveries(t.Context(), nil); err == nil {
		t.Fatal("listing deliveries with a static token succeeded")
	}
}

func TestRedeliverHookDelivery(t *testing.T) {
	t.Parallel()
	e := setup(t, ghsim.Options{AppID: appID, AppPublicKey: &appKey().PublicKey})
	failed := e.s.AddHookDelivery(ghsim.HookDelivery{StatusCode: 502, DeliveredAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)})
	app := e.appClient(t)

	_, _, err := app.Apps.RedeliverHookDelivery(t.Context(), failed.ID)
	var accepted *github.AcceptedError
	if !errors.As(err, &accepted) {
		t.Fatalf("redeliver: %v, want 202 Accepted", err)
	}
	all := e.s.HookDeliveries()
	if len(all) != 2 {
		t.Fatalf("%d deliveries after a redelivery, want 2", len(all))
	}
	re := all[0]
	if !re.Redelivery || re.GUID != failed.GUID || re.ID <= failed.ID || re.StatusCode != 200 || re.Status != "OK" || re.Event != failed.Event {
		t.Fatalf("redelivery %+v of %+v", re, failed)
	}

	e.s.SetRedeliveryStatus(503)
	if _, _, err := app.Apps.RedeliverHookDelivery(t.Context(), failed.ID); !errors.As(err, &accepted) {
		t.Fatalf("second redeliver: %v", err)
	}
	if again := e.s.HookDeliveries()[0]; again.StatusCode != 503 || again.Status != "Invalid HTTP Response: 503" || !again.Redelivery {
		t.Fatalf("failed redelivery recorded as %+v", again)
	}

	_, resp, err := app.Apps.RedeliverHookDelivery(t.Context(), 12345)
	if err == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("redeliver an unknown delivery: %v, want 404", err)
	}
	if got := e.s.Stats().Count(ghsim.RouteRedeliver, http.StatusAccepted); got != 2 {
		t.Fatalf("%d accepted redeliveries counted, want 2", got)
	}
}
