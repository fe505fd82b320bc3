package archivectl

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/ghclient"
)

var redeliverCommand = &command{
	name:     "redeliver",
	synopsis: "[--since 72h] [--dry-run] [--json]",
	summary:  "redeliver the App's failed workflow_run webhook deliveries",
	help: `Lists the App's webhook deliveries since DATE (GET /app/hook/deliveries,
every page) and asks GitHub to redeliver each failed "workflow_run"
"completed" delivery (POST /app/hook/deliveries/{id}/attempts). A delivery
is failed when neither it nor any redelivery of it (the same GUID) was
answered 2xx, so running the command twice does not redeliver what the
webhook has since accepted. GitHub never redelivers on its own, and only
allows redeliveries for about 3 days.

Needs App credentials (JWT authentication): GITHUB_TOKEN is not used.
Redeliveries are spaced one second apart, as GitHub asks for mutating
requests, and rate limits are waited out.

Examples:
  archivectl redeliver --dry-run
  archivectl redeliver --since 24h --json`,
	env: []envGroup{envApp, envOutput},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := &redeliverOptions{}
		fs.StringVar(&o.since, "since", "72h", "deliveries since `DATE` (a duration back from now, 2026-01-02, or RFC 3339)")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be redelivered; redeliver nothing")
		fs.BoolVar(&o.json, "json", false, "print the report as JSON")
		return o.run
	},
}

type redeliverOptions struct {
	since        string
	dryRun, json bool
}

// redeliverHorizon is how far back GitHub accepts redeliveries.
const redeliverHorizon = 72 * time.Hour

// Results of a redelivery.
const (
	resultRedelivered     = "redelivered"
	resultWouldRedeliver  = "would redeliver"
	resultRedeliverFailed = "error"
)

type redeliverReport struct {
	Since        time.Time    `json:"since"`
	DryRun       bool         `json:"dry_run"`
	Listed       int          `json:"deliveries_listed"`
	Failed       int          `json:"failed_workflow_run_deliveries"`
	Redeliveries []redelivery `json:"redeliveries"`
}

// redelivery is one failed delivery (all attempts of one GUID).
type redelivery struct {
	GUID           string    `json:"guid"`
	DeliveryID     int64     `json:"delivery_id"` // the attempt redelivered: the latest
	FirstAt        time.Time `json:"first_delivered_at"`
	Attempts       int       `json:"attempts"`
	LastStatus     string    `json:"last_status"`
	Action         string    `json:"action,omitempty"`
	InstallationID int64     `json:"installation_id,omitempty"`
	RepositoryID   int64     `json:"repository_id,omitempty"`
	Result         string    `json:"result"`
	Error          string    `json:"error,omitempty"`
}

func (o *redeliverOptions) run(ctx context.Context, c *cli, args []string) error {
	if len(args) != 0 {
		return usagef("no arguments expected, got %q", args)
	}
	since, err := parseSince(o.since, c.now())
	if err != nil {
		return err
	}
	if c.now().Sub(since) > redeliverHorizon+time.Hour {
		fmt.Fprintf(c.stderr, "warning: GitHub only redelivers deliveries of about the last 3 days; older ones will fail\n")
	}
	gh, _, err := c.gitHub(true)
	if err != nil {
		return err
	}
	app, err := gh.App()
	if err != nil {
		return usagef("%v", err)
	}

	deliveries, err := o.list(ctx, c, app, since)
	if err != nil {
		return err
	}
	rep := &redeliverReport{Since: since, DryRun: o.dryRun, Listed: len(deliveries), Redeliveries: failedDeliveries(deliveries)}
	rep.Failed = len(rep.Redeliveries)

	var last time.Time
	errs := 0
	for i := range rep.Redeliveries {
		r := &rep.Redeliveries[i]
		if o.dryRun {
			r.Result = resultWouldRedeliver
			continue
		}
		// GitHub asks for a second between mutating requests.
		if wait := time.Until(last.Add(ghclient.MutationInterval)); wait > 0 {
			if err := c.wait(ctx, wait); err != nil {
				return err
			}
		}
		err := c.retryRateLimited(ctx, "redelivering "+r.GUID, func() error {
			return app.RedeliverHookDelivery(ctx, r.DeliveryID)
		})
		last = time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.Result, r.Error = resultRedeliverFailed, err.Error()
			errs++
			continue
		}
		r.Result = resultRedelivered
	}

	if o.json {
		if err := writeJSON(c.stdout, rep); err != nil {
			return err
		}
	} else if err := o.print(c, rep); err != nil {
		return err
	}
	if errs > 0 {
		return errReported
	}
	return nil
}

// list reads every delivery since since (all pages, ghclient), waiting
// out rate limits; a rate-limited listing starts again from the newest page.
func (o *redeliverOptions) list(ctx context.Context, c *cli, app *ghclient.AppClient, since time.Time) ([]ghclient.HookDelivery, error) {
	var out []ghclient.HookDelivery
	err := c.retryRateLimited(ctx, "listing webhook deliveries", func() (err error) {
		out, err = app.ListHookDeliveries(ctx, since)
		return err
	})
	return out, err
}

// failedDeliveries groups deliveries by GUID and returns the workflow_run
// "completed" ones that no attempt delivered successfully, oldest first.
func failedDeliveries(ds []ghclient.HookDelivery) []redelivery {
	type group struct {
		latest, first ghclient.HookDelivery
		n             int
		ok            bool
	}
	groups := map[string]*group{}
	var order []string
	for _, d := range ds {
		g := groups[d.GUID]
		if g == nil {
			g = &group{latest: d, first: d}
			groups[d.GUID] = g
			order = append(order, d.GUID)
		}
		g.n++
		g.ok = g.ok || d.OK()
		if d.ID > g.latest.ID {
			g.latest = d
		}
		if d.DeliveredAt.Before(g.first.DeliveredAt) {
			g.first = d
		}
	}
	out := []redelivery{}
	for _, guid := range order {
		g := groups[guid]
		d := g.latest
		if g.ok || d.Event != "workflow_run" || (d.Action != "completed" && d.Action != "") {
			continue
		}
		out = append(out, redelivery{
			GUID: guid, DeliveryID: d.ID, FirstAt: g.first.DeliveredAt, Attempts: g.n,
			LastStatus: d.Status, Action: d.Action, InstallationID: d.InstallationID, RepositoryID: d.RepositoryID,
		})
	}
	slices.SortFunc(out, func(a, b redelivery) int {
		return cmp.Or(a.FirstAt.Compare(b.FirstAt), cmp.Compare(a.DeliveryID, b.DeliveryID))
	})
	return out
}

func (o *redeliverOptions) print(c *cli, rep *redeliverReport) error {
	if len(rep.Redeliveries) > 0 {
		t := newTable(c.stdout, c.color, func(col int, s string) string {
			if col == 6 {
				return statusColor(s)
			}
			return sgrNone
		}, "GUID", "FIRST_DELIVERED", "ATTEMPTS", "LAST_STATUS", "INSTALLATION", "REPOSITORY_ID", "RESULT")
		for _, r := range rep.Redeliveries {
			result := r.Result
			if r.Error != "" {
				result += ": " + r.Error
			}
			t.row(r.GUID, shortTime(r.FirstAt), strconv.Itoa(r.Attempts), r.LastStatus, idOrDash(r.InstallationID), idOrDash(r.RepositoryID), result)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	verb := "redelivered"
	if rep.DryRun {
		verb = "would redeliver"
	}
	done := 0
	for _, r := range rep.Redeliveries {
		if r.Result != resultRedeliverFailed {
			done++
		}
	}
	fmt.Fprintf(c.stdout, "%s since %s: %s, %s %d\n", plural(rep.Listed, "delivery"), rep.Since.UTC().Format(time.RFC3339),
		plural(rep.Failed, "failed workflow_run delivery"), verb, done)
	return nil
}

func idOrDash(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 10)
}
