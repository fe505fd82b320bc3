package deploy

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

var promql = parser.NewParser(parser.Options{})

// metricNames returns the metric names an expression selects.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("%s: selector %s has no metric name", where, vs)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// runbookAnchors returns the GitHub anchors of docs/operations.md's
// headings.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(readFile(t, filepath.Join(repoRoot, "docs/operations.md"))), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		h = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(h, "")
		anchors[strings.ReplaceAll(h, " ", "-")] = true
	}
	return anchors
}

// TestAlertRules: the rules load as Prometheus loads them (rulefmt, which
// also parses every expression and template), reference only metrics that
// exist, and each has a severity and a runbook in docs/operations.md.
func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile("prometheus/alerts.yaml", false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		return
	}
	anchors := runbookAnchors(t)
	const runbookBase = "https://github.com/artifact-archiver/artifact-archiver/blob/main/docs/operations.md#"
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: recording rule %s; keep this file to alerts", g.Name, r.Record)
				continue
			}
			if slices.Contains(alerts, r.Alert) {
				t.Errorf("alert %s: defined twice", r.Alert)
			}
			alerts = append(alerts, r.Alert)
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("alert %s: annotation %s is required", r.Alert, a)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
			if !ok || anchor != strings.ToLower(r.Alert) || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q: want %s%s and a heading %q in docs/operations.md",
					r.Alert, r.Annotations["runbook_url"], runbookBase, strings.ToLower(r.Alert), r.Alert)
			}
			for _, name := range metricNames(t, "alert "+r.Alert, r.Expr) {
				if !knownMetric(t, name) {
					t.Errorf("alert %s: metric %s is exported by nothing we run (pkg/ or externalMetrics)", r.Alert, name)
				}
			}
		}
	}
	// The alerts the operations guide promises.
	for _, want := range []string{"ArchiverWebhook5xx", "ArchiverWebhookSignatureFailures", "ArchiverDeadLetters",
		"ArchiverConsumerLag", "ArchiverGitHubRateLimitLow", "ArchiverNoArchiveInHours"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s is missing", want)
		}
	}
}

type grafanaPanel struct {
	ID      int            `json:"id"`
	Type    string         `json:"type"`
	Title   string         `json:"title"`
	Panels  []grafanaPanel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// grafanaVars replaces Grafana's variables with values PromQL accepts.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"${namespace}", "ns", "$namespace", "ns",
)

// TestGrafanaDashboard: valid JSON, unique panel ids, every query parses
// and reads metrics that exist.
func TestGrafanaDashboard(t *testing.T) {
	var d struct {
		UID        string         `json:"uid"`
		Title      string         `json:"title"`
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(readFile(t, "grafana/dashboard.json"), &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard: uid and title are required")
	}
	ids := map[int]bool{}
	var queries int
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel %q: id %d repeated", p.Title, p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q: no queries", p.Title)
			}
			for _, tg := range p.Targets {
				queries++
				expr := grafanaVars.Replace(tg.Expr)
				if strings.Contains(expr, "$") {
					t.Errorf("panel %q: unknown variable in %q", p.Title, tg.Expr)
					continue
				}
				for _, name := range metricNames(t, "panel "+p.Title, expr) {
					if !knownMetric(t, name) {
						t.Errorf("panel %q: metric %s is exported by nothing we run", p.Title, name)
					}
				}
			}
		}
	}
	walk(d.Panels)
	if queries < 10 {
		t.Errorf("dashboard: only %d queries", queries)
	}
}

// TestMetricInventory guards the test itself: the metric discovery must
// find the metrics of every package that exports some, and the external
// ones must be what the binaries really register.
func TestMetricInventory(t *testing.T) {
	ours := ourMetrics(t)
	for _, name := range []string{"archiver_webhook_deliveries_total", "archiver_jobs_total", "archiver_artifacts_total",
		"archiver_github_rate_limit_remaining", "archiver_transfer_duration_seconds"} {
		if !ours[name] {
			t.Errorf("metric %s not found in pkg/: the discovery is broken or the metric was renamed", name)
		}
	}
	for _, file := range []string{"pkg/worker/service.go", "pkg/webhook/server.go"} {
		if !strings.Contains(string(readFile(t, filepath.Join(repoRoot, file))), "collectors.NewProcessCollector") {
			t.Errorf("%s no longer registers the process collector; update externalMetrics", file)
		}
	}
}
