// Package demo runs the whole artifact-archiver flow in one process, on
// embedded defaults: an embedded NATS JetStream server, the GitHub
// simulator with a few repositories and runs, the webhook and a worker,
// archiving into a local directory (or any ARCHIVER_DESTINATION). It sends
// signed deliveries, waits for every run's manifest and prints what was
// archived.
package demo

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/attesttest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/catalog"
	"github.com/artifact-archiver/artifact-archiver/pkg/destination"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
	"github.com/artifact-archiver/artifact-archiver/pkg/worker"
)

// DefaultDestination is where the demo archives unless told otherwise.
const DefaultDestination = "file://./archive-demo"

const (
	demoToken  = "ghp_demo_token"
	demoSecret = "demo-webhook-secret"
)

// Options configure a demo run.
type Options struct {
	// Destination is the archive (default DefaultDestination).
	Destination string
	// ForcePathStyle for S3-compatible destinations.
	ForcePathStyle bool
	// Logger receives the components' logs (default: warnings to stderr).
	Logger *slog.Logger
	// Timeout bounds the wait for the archive (default 2 minutes).
	Timeout time.Duration
}

// run is one simulated workflow run the demo delivers.
type run struct {
	repo ghsim.Repo
	run  ghsim.Run
}

// Run executes the demo and prints its progress and result to out.
func Run(ctx context.Context, o Options, out io.Writer) error {
	o.Destination = cmp.Or(o.Destination, DefaultDestination)
	o.Timeout = cmp.Or(o.Timeout, 2*time.Minute)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// 1. NATS JetStream, embedded, on a free loopback port.
	storeDir, err := os.MkdirTemp("", "archiver-demo-nats-")
	if err != nil {
		return fmt.Errorf("demo: nats store: %w", err)
	}
	defer os.RemoveAll(storeDir)
	ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: storeDir, Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		return fmt.Errorf("demo: nats: %w", err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("demo: nats did not start")
	}
	fmt.Fprintf(out, "● NATS JetStream        %s (embedded)\n", ns.ClientURL())

	// 2. The GitHub simulator with a few repositories and runs.
	sim, err := ghsim.New(ghsim.Options{Tokens: []string{demoToken}})
	if err != nil {
		return fmt.Errorf("demo: github simulator: %w", err)
	}
	defer sim.Close()
	runs := seed(sim)
	fmt.Fprintf(out, "● GitHub simulator      %s (blob host %s)\n", sim.URL(), sim.BlobURL())
	roots, err := attest(sim, runs)
	if err != nil {
		return err
	}
	defer os.Remove(roots)

	// 3. The webhook.
	topo := events.Topology{}.WithDefaults()
	wh, err := webhook.NewServer(webhook.Config{
		ListenAddr: "127.0.0.1:0", NATS: events.ConnConfig{URL: ns.ClientURL()}, Topology: topo,
		MaxBodyBytes: webhook.DefaultMaxBodyBytes, PublishTimeout: 5 * time.Second, ShutdownTimeout: 10 * time.Second,
		LogFormat: "text", Secret: demoSecret,
	}, webhook.NewSecrets(demoSecret), o.Logger.With("component", "webhook"), prometheus.NewRegistry())
	if err != nil {
		return fmt.Errorf("demo: webhook: %w", err)
	}
	if err := wh.Start(ctx); err != nil {
		return fmt.Errorf("demo: webhook: %w", err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer scancel()
		_ = wh.Stop(sctx)
	}()
	hookURL := "http://" + wh.Addr() + "/webhook"
	fmt.Fprintf(out, "● webhook               %s\n", hookURL)

	// 4. A worker archiving into the destination.
	store, err := destination.Open(ctx, o.Destination, destination.Options{ForcePathStyle: o.ForcePathStyle, Logger: o.Logger})
	if err != nil {
		return fmt.Errorf("demo: destination: %w", err)
	}
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan error, 1)
	go func() {
		workerDone <- worker.Serve(wctx, worker.ServiceConfig{
			NATS: events.ConnConfig{URL: ns.ClientURL()}, Topology: topo,
			GitHubAPIURL: sim.URL(), GitHubToken: demoToken,
			Destination: o.Destination, ForcePathStyle: o.ForcePathStyle,
			Concurrency: 4, RunSlots: 4, PartSize: 16 << 20, EmptyListWait: time.Minute,
			AllowHTTP: true, MetricsAddr: "127.0.0.1:0", ShutdownGrace: 10 * time.Second,
			Attestations: true, TrustedRootSources: "file://" + filepath.ToSlash(roots),
		}, o.Logger.With("component", "worker"))
	}()
	defer func() {
		stopWorker()
		<-workerDone
	}()
	fmt.Fprintf(out, "● worker                archiving into %s\n\n", store.Location(""))

	// 5. Signed deliveries, as GitHub sends them.
	if err := waitReady(ctx, wh); err != nil {
		return err
	}
	for _, r := range runs {
		body, err := sim.RunPayload(r.repo.Owner, r.repo.Name, r.run.ID, 0)
		if err != nil {
			return fmt.Errorf("demo: payload: %w", err)
		}
		status, resp, err := deliver(ctx, hookURL, "delivery-"+strconv.FormatInt(r.run.ID, 10), ghsim.Sign(demoSecret, body), body)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "→ delivery %-28s run %d attempt %d: %d %s\n", r.repo.FullName(), r.run.ID, r.run.Attempt, status, resp)
	}
	// A redelivery of the first run and a forged delivery.
	first := runs[0]
	body, _ := sim.RunPayload(first.repo.Owner, first.repo.Name, first.run.ID, 0)
	status, resp, err := deliver(ctx, hookURL, "redelivery-"+strconv.FormatInt(first.run.ID, 10), ghsim.Sign(demoSecret, body), body)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "→ redelivery of run %d:                          %d %s\n", first.run.ID, status, resp)
	status, _, err = deliver(ctx, hookURL, "forged", ghsim.Sign("wrong secret", body), body)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "→ delivery with a wrong signature:              %d (refused)\n\n", status)

	// 6. Wait for every run attempt's manifest and print them.
	manifests, err := waitForManifests(ctx, store, runs, o.Timeout)
	if err != nil {
		return err
	}
	rows, err := waitForCatalogue(ctx, store, manifests, o.Timeout)
	if err != nil {
		return err
	}
	printManifests(out, store, o.Destination, manifests, rows)
	return nil
}

// attest signs a SLSA provenance attestation for the artifacts of the
// release run and the CI run's dist, as actions/attest-build-provenance
// would, with a private Sigstore instance (internal/testkit/attesttest),
// has the simulator serve them, and writes that instance's trusted root to
// a temporary file for the worker's daily snapshot. It returns the file.
func attest(sim *ghsim.Server, runs []run) (string, error) {
	sig, err := attesttest.Generate()
	if err != nil {
		return "", fmt.Errorf("demo: sigstore: %w", err)
	}
	for _, r := range runs {
		if r.run.Event != "release" && r.repo.Name != "widgets" {
			continue
		}
		for _, a := range sim.Artifacts(r.repo.Owner, r.repo.Name) {
			if a.RunID != r.run.ID || (a.Name != "dist" && a.Name != "bundle") {
				continue
			}
			digest, err := sim.Digest(a.ID)
			if err != nil || digest == "" {
				return "", fmt.Errorf("demo: digest of %s: %v", a.Name, err)
			}
			hex := strings.TrimPrefix(digest, "sha256:")
			b, err := sig.Sign(attesttest.Spec{Owner: r.repo.Owner, Repo: r.repo.Name, Workflow: r.run.Path, SHA256: hex, SubjectName: a.Name + ".zip"})
			if err != nil {
				return "", fmt.Errorf("demo: sign %s: %w", a.Name, err)
			}
			if _, err := sim.AddAttestation(r.repo.Owner, r.repo.Name, hex, b, attesttest.SLSAProvenance); err != nil {
				return "", fmt.Errorf("demo: %w", err)
			}
		}
	}
	tr, err := sig.TrustedRoot()
	if err != nil {
		return "", fmt.Errorf("demo: trusted root: %w", err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		return "", fmt.Errorf("demo: trusted root: %w", err)
	}
	f, err := os.CreateTemp("", "archiver-demo-trusted-root-*.json")
	if err != nil {
		return "", fmt.Errorf("demo: trusted root: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return "", fmt.Errorf("demo: trusted root: %w", err)
	}
	return f.Name(), nil
}

// waitForCatalogue waits until the catalogue holds every manifest's
// attempt (the worker writes it right after the manifest) and returns its
// rows.
func waitForCatalogue(ctx context.Context, store archive.Store, ms []*archive.Manifest, timeout time.Duration) ([]catalog.Row, error) {
	deadline := time.Now().Add(timeout)
	for {
		rows, err := catalog.Find(ctx, store, catalog.Filter{})
		seen := map[int64]bool{}
		for _, r := range rows {
			seen[r.RunID] = true
		}
		n := 0
		for _, m := range ms {
			if seen[m.WorkflowRun.ID] {
				n++
			}
		}
		if err == nil && n == len(ms) {
			return rows, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("demo: catalogue holds %d of %d run attempts after %s (err: %v)", n, len(ms), timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// seed creates the demo's repositories, runs and artifacts.
func seed(sim *ghsim.Server) []run {
	const mib = 1 << 20
	widgets := sim.AddRepo(0, "acme", "widgets")
	gadgets := sim.AddRepo(0, "acme", "gadgets.js")
	r1 := sim.AddRun(widgets.Owner, widgets.Name, ghsim.RunSpec{Name: "CI", HeadBranch: "main"})
	sim.AddArtifact(widgets.Owner, widgets.Name, r1.ID, ghsim.ArtifactSpec{Name: "dist", Size: 3 * mib})
	sim.AddArtifact(widgets.Owner, widgets.Name, r1.ID, ghsim.ArtifactSpec{Name: "coverage", Size: 180 << 10})
	sim.AddArtifact(widgets.Owner, widgets.Name, r1.ID, ghsim.ArtifactSpec{Name: "report", Raw: true, FileName: "report.html", Size: 40 << 10})
	sim.AddArtifact(widgets.Owner, widgets.Name, r1.ID, ghsim.ArtifactSpec{Name: "old-logs", Size: 1 << 10, Expired: true})
	r2 := sim.AddRun(gadgets.Owner, gadgets.Name, ghsim.RunSpec{Name: "Release", HeadBranch: "v2.1.0", Event: "release"})
	sim.AddArtifact(gadgets.Owner, gadgets.Name, r2.ID, ghsim.ArtifactSpec{Name: "bundle", Size: 40 * mib})
	sim.AddArtifact(gadgets.Owner, gadgets.Name, r2.ID, ghsim.ArtifactSpec{Name: "legacy-symbols", Size: 2 * mib, NoDigest: true})
	r3 := sim.AddRun(gadgets.Owner, gadgets.Name, ghsim.RunSpec{Name: "Nightly", Conclusion: "failure"})
	sim.AddArtifact(gadgets.Owner, gadgets.Name, r3.ID, ghsim.ArtifactSpec{Name: "test-results", Size: 700 << 10})
	sim.AddArtifact(gadgets.Owner, gadgets.Name, r3.ID, ghsim.ArtifactSpec{Name: "test-results", Size: 650 << 10})
	out := []run{{widgets, r1}, {gadgets, r2}, {gadgets, r3}}
	return out
}

func waitReady(ctx context.Context, wh *webhook.Server) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := wh.Ready(ctx); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("demo: webhook not ready: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func deliver(ctx context.Context, url, id, sig string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("demo: delivery: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "workflow_run")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("demo: delivery: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(bytes.TrimSpace(b)), nil
}

func waitForManifests(ctx context.Context, store archive.Store, runs []run, timeout time.Duration) ([]*archive.Manifest, error) {
	deadline := time.Now().Add(timeout)
	out := make([]*archive.Manifest, len(runs))
	for {
		done := 0
		for i, r := range runs {
			if out[i] != nil {
				done++
				continue
			}
			l := archive.Layout{Owner: r.repo.Owner, Repo: r.repo.Name, RunID: r.run.ID}
			rc, err := store.Open(ctx, l.ManifestKey(r.run.Attempt))
			if err != nil {
				continue
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				continue
			}
			if m, err := archive.DecodeManifest(b); err == nil {
				out[i] = m
				done++
			}
		}
		if done == len(runs) {
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("demo: %d of %d runs archived after %s", done, len(runs), timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func printManifests(out io.Writer, store archive.Store, dest string, ms []*archive.Manifest, rows []catalog.Row) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tRUN\tWORKFLOW\tARTIFACT\tSTATUS\tSIZE\tSHA-256\tATTESTATIONS\tKEY")
	var sha string
	for _, m := range ms {
		for _, a := range m.Artifacts {
			sum := a.SHA256
			if len(sum) > 12 {
				sum = sum[:12] + "…"
			}
			att := "-"
			if a.Attestations != nil {
				att = strconv.Itoa(a.Attestations.Count)
			}
			fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Repository.FullName, m.WorkflowRun.ID, m.WorkflowRun.RunAttempt,
				m.WorkflowName, a.Name, a.Status, humanBytes(a.Size), sum, att, a.Key)
		}
		if m.WorkflowRun.Event == "release" {
			sha = m.WorkflowRun.HeadSHA
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "\nArchived into %s: one manifest.json and SHA256SUMS per run attempt, written last;\n", store.Location(""))
	fmt.Fprintf(out, "the query catalogue (%d rows under %s) and the attestations with a trusted-root snapshot.\n", len(rows), catalog.Prefix)
	fmt.Fprintf(out, "Look around:  ARCHIVER_DESTINATION=%s go run ./cmd/archivectl ls\n", dest)
	if len(sha) >= 7 {
		fmt.Fprintf(out, "Query it:     ARCHIVER_DESTINATION=%s go run ./cmd/archivectl find --sha %s\n", dest, sha[:7])
	}
	fmt.Fprintf(out, "Verify it:    ARCHIVER_DESTINATION=%s go run ./cmd/archivectl verify --deep --attestations\n", dest)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
