package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
)

// options are the command-line flags.
type options struct {
	natsURL    string
	natsBin    string
	target     string
	secret     string
	conns      int
	duration   time.Duration
	warmup     time.Duration
	mode       string
	client     string
	logLevel   string
	cpuProfile string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.natsURL, "nats-url", "", "JetStream to use; empty starts one (see -nats-bin)")
	fs.StringVar(&o.natsBin, "nats-bin", "", "nats-server binary to start as a separate process with file storage; empty embeds the server in this process")
	fs.StringVar(&o.target, "url", "", "webhook URL to load; empty runs the webhook in this process on a real TCP listener")
	fs.StringVar(&o.secret, "secret", "loadgen-secret", "webhook secret (must match the target's)")
	fs.IntVar(&o.conns, "c", 16, "concurrent connections (and concurrent raw publishers)")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "measured duration of each phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each phase")
	fs.StringVar(&o.mode, "mode", "both", "both (raw, webhook, raw), webhook or raw")
	fs.StringVar(&o.client, "client", "raw", "HTTP client: raw (pre-rendered HTTP/1.1 on keep-alive sockets, cheap) or nethttp (net/http.Client)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level of the in-process webhook; its JSON logs are formatted and discarded")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the webhook phase to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.conns < 1:
		return o, errors.New("-c must be >= 1")
	case o.duration <= 0:
		return o, errors.New("-d must be positive")
	case o.mode != "both" && o.mode != "webhook" && o.mode != "raw":
		return o, fmt.Errorf("-mode %q: want both, webhook or raw", o.mode)
	case o.client != "raw" && o.client != "nethttp":
		return o, fmt.Errorf("-client %q: want raw or nethttp", o.client)
	case o.target != "" && o.natsURL == "" && o.mode != "webhook":
		return o, errors.New("-url with a raw phase needs -nats-url (the target's JetStream)")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	tmp, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	natsURL, natsPID, stopNATS, err := startNATS(o, tmp)
	if err != nil {
		return err
	}
	defer stopNATS()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := events.Connect(events.ConnConfig{URL: natsURL}, "loadgen", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo := events.Topology{}.WithDefaults()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = provisionWhenUp(pctx, js, topo)
	cancel()
	if err != nil {
		return err
	}

	target := o.target
	if target == "" && o.mode != "raw" {
		srv, err := startWebhook(ctx, o, natsURL)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Stop(sctx)
		}()
		target = "http://" + srv.Addr() + "/webhook"
	}

	gen, err := newGenerator(o.secret)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "loadgen: %d connections, %s measured after %s warm-up, GOMAXPROCS=%d, %d CPUs, %s\n",
		o.conns, o.duration, o.warmup, runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(stdout, "  nats: %s (%s)\n  body: %d bytes workflow_run delivery, event: %d bytes, client: %s\n",
		natsURL, natsKind(o), len(gen.template), len(gen.event), o.client)

	var raws []phaseResult
	rawPhase := func() error {
		purge(ctx, js, topo)
		r, err := runRaw(ctx, o, js, topo, gen, natsPID)
		if err != nil {
			return err
		}
		raws = append(raws, r)
		fmt.Fprintln(stdout, r.String("raw JetStream sync publish"))
		return nil
	}
	if o.mode != "webhook" {
		if err := rawPhase(); err != nil {
			return err
		}
	}
	var hook phaseResult
	if o.mode != "raw" {
		purge(ctx, js, topo)
		if o.cpuProfile != "" {
			f, err := os.Create(o.cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		}
		hook, err = runWebhook(ctx, o, target, gen, natsPID)
		if o.cpuProfile != "" {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, hook.String("webhook deliveries (202 after ack)"))
		if o.natsURL == "" || o.target == "" {
			stored, err := streamMsgs(ctx, js, topo)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%34s stream holds %d messages for %d deliveries accepted as new (warm-up and tail included; %d duplicates measured)\n", "", stored, hook.total, hook.duplicates)
			if stored != uint64(hook.total) {
				return fmt.Errorf("stream holds %d messages but %d deliveries were accepted", stored, hook.total)
			}
		}
	}
	if o.mode == "both" {
		if err := rawPhase(); err != nil {
			return err
		}
		var sum float64
		for _, r := range raws {
			sum += r.rate()
		}
		raw := sum / float64(len(raws))
		fmt.Fprintf(stdout, "ratio webhook/raw = %.2f (raw mean %.0f/s of %d runs; target >= 0.50), webhook p99 %s (target < 25ms)\n",
			hook.rate()/raw, raw, len(raws), ms(hook.pct(99)))
	}
	return nil
}

func natsKind(o options) string {
	switch {
	case o.natsURL != "":
		return "external"
	case o.natsBin != "":
		return "separate process " + o.natsBin + ", file storage"
	default:
		return "embedded in this process, file storage"
	}
}

// startNATS returns the JetStream URL to use, the pid of a nats-server
// process it started (0 otherwise) and a stop function.
func startNATS(o options, tmp string) (string, int, func(), error) {
	if o.natsURL != "" {
		return o.natsURL, 0, func() {}, nil
	}
	port, err := freePort()
	if err != nil {
		return "", 0, nil, err
	}
	store := filepath.Join(tmp, "jetstream")
	if o.natsBin != "" {
		cmd := exec.Command(o.natsBin, "-js", "-sd", store, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			return "", 0, nil, fmt.Errorf("start %s: %w", o.natsBin, err)
		}
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		return "nats://127.0.0.1:" + strconv.Itoa(port), cmd.Process.Pid, stop, nil
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: store, NoLog: true, NoSigs: true})
	if err != nil {
		return "", 0, nil, fmt.Errorf("nats server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return "", 0, nil, errors.New("embedded nats server not ready")
	}
	return ns.ClientURL(), 0, func() { ns.Shutdown(); ns.WaitForShutdown() }, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// provisionWhenUp provisions the streams, retrying while NATS starts.
func provisionWhenUp(ctx context.Context, js jetstream.JetStream, topo events.Topology) error {
	for {
		err := events.ProvisionStreams(ctx, js, topo)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("provision streams: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func purge(ctx context.Context, js jetstream.JetStream, topo events.Topology) {
	if s, err := js.Stream(ctx, topo.Stream); err == nil {
		s.Purge(ctx)
	}
}

func streamMsgs(ctx context.Context, js jetstream.JetStream, topo events.Topology) (uint64, error) {
	s, err := js.Stream(ctx, topo.Stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

func startWebhook(ctx context.Context, o options, natsURL string) (*webhook.Server, error) {
	env := map[string]string{
		"ARCHIVER_LISTEN_ADDR":  "127.0.0.1:0",
		"NATS_URL":              natsURL,
		"GITHUB_WEBHOOK_SECRET": o.secret,
		"ARCHIVER_LOG_LEVEL":    o.logLevel,
	}
	cfg, err := webhook.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	secrets, err := cfg.LoadSecrets(os.ReadFile)
	if err != nil {
		return nil, err
	}
	// Production logging cost (JSON formatting at the configured level),
	// without the terminal.
	srv, err := webhook.NewServer(cfg, secrets, cfg.NewLogger(io.Discard), prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("in-process webhook not ready: %w", srv.Ready(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return srv, nil
}

// generator renders distinct signed deliveries cheaply: the body is a
// template whose run id digits are patched in place, and the HMAC state
// after the unchanging prefix is computed once and cloned.
type generator struct {
	secret    []byte
	template  []byte
	positions []int // offsets of the run id digits
	prefixMAC hash.Hash
	event     []byte // the compact event for the same run, for the raw phase
	next      atomic.Int64
	base      int64
}

const (
	placeholderRunID = 1_999_999_999_999
	runIDDigits      = 13
)

func newGenerator(secret string) (*generator, error) {
	body, err := ghsim.WorkflowRunPayload(ghsim.RunPayload{InstallationID: 4242, RepoID: 777, RunID: placeholderRunID, RunAttempt: 1})
	if err != nil {
		return nil, err
	}
	ph := []byte(strconv.FormatInt(placeholderRunID, 10))
	g := &generator{secret: []byte(secret), template: body}
	for i := 0; ; {
		j := bytes.Index(body[i:], ph)
		if j < 0 {
			break
		}
		g.positions = append(g.positions, i+j)
		i += j + len(ph)
	}
	if len(g.positions) == 0 {
		return nil, errors.New("run id placeholder not found in the payload")
	}
	g.prefixMAC = hmac.New(sha256.New, g.secret)
	g.prefixMAC.Write(body[:g.positions[0]])
	if _, err := g.prefixMAC.(hash.Cloner).Clone(); err != nil {
		return nil, fmt.Errorf("hmac clone: %w", err)
	}
	run, err := webhook.ParseWorkflowRun(body)
	if err != nil {
		return nil, err
	}
	run.Event.DeliveryID = "00000000-0000-0000-0000-000000000000"
	run.Event.ReceivedAt = time.Now().UTC()
	if g.event, err = run.Event.Encode(); err != nil {
		return nil, err
	}
	// Distinct from earlier runs against the same JetStream (72 h dedup
	// window): a time-based block of ids.
	g.base = 1_000_000_000_000 + time.Now().Unix()%100_000*5_000_000
	return g, nil
}

// runID returns a new distinct run id of runIDDigits digits.
func (g *generator) runID() int64 { return g.base + g.next.Add(1) }

// render writes the delivery for runID into body (a copy of the template)
// and returns its signature header value.
func (g *generator) render(body []byte, runID int64, sig []byte) []byte {
	var digits [runIDDigits]byte
	strconv.AppendInt(digits[:0], runID, 10)
	for _, p := range g.positions {
		copy(body[p:], digits[:])
	}
	mac, _ := g.prefixMAC.(hash.Cloner).Clone()
	mac.Write(body[g.positions[0]:])
	var sum [sha256.Size]byte
	sig = append(sig[:0], "sha256="...)
	return hex.AppendEncode(sig, mac.Sum(sum[:0]))
}

// phaseResult collects one measured phase.
type phaseResult struct {
	ok, duplicates int
	total          int64 // accepted ops including warm-up and tail
	errors         map[string]int
	latencies      []time.Duration
	elapsed        time.Duration
	cpuSelf        time.Duration // this process's CPU in the window
	cpuNATS        time.Duration // the nats-server process's, if we started it
}

func (r phaseResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r phaseResult) pct(p int) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, len(r.latencies)*p/100)]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms" }

func (r phaseResult) String(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-34s %8.0f/s  p50 %s  p90 %s  p99 %s  max %s  (%d ok in %s",
		name+":", r.rate(), ms(r.pct(50)), ms(r.pct(90)), ms(r.pct(99)), ms(r.pct(100)), r.ok, r.elapsed.Round(time.Millisecond))
	if len(r.errors) > 0 {
		fmt.Fprintf(&b, ", errors %v", r.errors)
	}
	b.WriteString(")")
	if r.ok > 0 {
		fmt.Fprintf(&b, "\n%34s CPU per op: this process %.1fµs", "", float64(r.cpuSelf.Microseconds())/float64(r.ok))
		if r.cpuNATS > 0 {
			fmt.Fprintf(&b, ", nats-server %.1fµs", float64(r.cpuNATS.Microseconds())/float64(r.ok))
		}
	}
	return b.String()
}

// window runs worker on o.conns goroutines: a warm-up, then the measured
// window. A worker loops until stop() reports true, calling measure with
// each op's latency and outcome ("ok", "dup" or an error key).
func window(ctx context.Context, o options, natsPID int, worker func(id int, stop func() bool, measure func(time.Duration, string)) error) (phaseResult, error) {
	res := phaseResult{errors: map[string]int{}}
	var measuring, stopped atomic.Bool
	var total atomic.Int64
	per := make([][]time.Duration, o.conns)
	counts := make([]map[string]int, o.conns)
	errs := make([]error, o.conns)
	var wg sync.WaitGroup
	for i := range o.conns {
		counts[i] = map[string]int{}
		wg.Go(func() {
			errs[i] = worker(i, stopped.Load, func(d time.Duration, outcome string) {
				if outcome == "ok" {
					total.Add(1)
				}
				if !measuring.Load() {
					return
				}
				counts[i][outcome]++
				if outcome == "ok" || outcome == "dup" {
					per[i] = append(per[i], d)
				}
			})
		})
	}
	sleep(ctx, o.warmup)
	cpu0, nats0 := cpuTime(), procCPU(natsPID)
	start := time.Now()
	measuring.Store(true)
	sleep(ctx, o.duration)
	measuring.Store(false)
	res.elapsed = time.Since(start)
	res.cpuSelf, res.cpuNATS = cpuTime()-cpu0, procCPU(natsPID)-nats0
	stopped.Store(true)
	wg.Wait()
	res.total = total.Load()
	for i := range o.conns {
		for k, v := range counts[i] {
			switch k {
			case "ok":
				res.ok += v
			case "dup":
				res.ok += v
				res.duplicates += v
			default:
				res.errors[k] += v
			}
		}
		res.latencies = append(res.latencies, per[i]...)
	}
	slices.Sort(res.latencies)
	return res, errors.Join(errs...)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the user+system CPU time of process pid (0: none), from
// /proc/<pid>/stat, in clock ticks of 10 ms.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	rest := b[bytes.LastIndexByte(b, ')')+2:]
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// runRaw publishes the compact event synchronously from o.conns
// goroutines with distinct message ids: the bound for the webhook.
func runRaw(ctx context.Context, o options, js jetstream.JetStream, topo events.Topology, g *generator, natsPID int) (phaseResult, error) {
	subject := topo.Subjects.Run(&runevent.RunCompleted{InstallationID: 4242, Repository: runevent.Repository{ID: 777}})
	return window(ctx, o, natsPID, func(_ int, stop func() bool, measure func(time.Duration, string)) error {
		for !stop() {
			id := g.runID()
			msg := nats.NewMsg(subject)
			msg.Data = g.event
			msg.Header.Set(events.HeaderSchema, "1")
			msg.Header.Set(events.HeaderDelivery, "loadgen-"+strconv.FormatInt(id, 10))
			pctx, cancel := context.WithTimeout(ctx, events.DefaultPublishTimeout)
			start := time.Now()
			ack, err := js.PublishMsg(pctx, msg, jetstream.WithMsgID(runevent.MsgID(id, 1)), jetstream.WithExpectStream(topo.Stream))
			d := time.Since(start)
			cancel()
			switch {
			case err != nil:
				measure(d, "publish error")
			case ack.Duplicate:
				measure(d, "dup")
			default:
				measure(d, "ok")
			}
		}
		return nil
	})
}

// runWebhook sends deliveries over o.conns keep-alive connections.
func runWebhook(ctx context.Context, o options, target string, g *generator, natsPID int) (phaseResult, error) {
	u, err := url.Parse(target)
	if err != nil {
		return phaseResult{}, fmt.Errorf("-url: %w", err)
	}
	send := rawClient
	if o.client == "nethttp" {
		send = netHTTPClient
	}
	return window(ctx, o, natsPID, func(_ int, stop func() bool, measure func(time.Duration, string)) error {
		return send(ctx, u, g, stop, measure)
	})
}

// rawClient writes pre-rendered HTTP/1.1 requests on one keep-alive
// connection and parses the responses with net/http.
func rawClient(ctx context.Context, u *url.URL, g *generator, stop func() bool, measure func(time.Duration, string)) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 4096)
	body := slices.Clone(g.template)
	head := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: GitHub-Hookshot/loadgen\r\nContent-Type: application/json\r\nX-GitHub-Event: workflow_run\r\nX-GitHub-Hook-ID: 1\r\nContent-Length: %d\r\n",
		u.RequestURI(), u.Host, len(body))
	req := make([]byte, 0, len(head)+256+len(body))
	var sig []byte
	for !stop() {
		id := g.runID()
		sig = g.render(body, id, sig)
		req = append(req[:0], head...)
		req = append(req, "X-GitHub-Delivery: loadgen-"...)
		req = strconv.AppendInt(req, id, 10)
		req = append(req, "\r\nX-Hub-Signature-256: "...)
		req = append(req, sig...)
		req = append(req, "\r\n\r\n"...)
		req = append(req, body...)
		start := time.Now()
		if _, err := conn.Write(req); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		dup, err := accepted(resp)
		lat := time.Since(start)
		if err != nil {
			return err
		}
		measure(lat, outcome(resp.StatusCode, dup))
	}
	return nil
}

// netHTTPClient sends the deliveries with a net/http.Client.
func netHTTPClient(ctx context.Context, u *url.URL, g *generator, stop func() bool, measure func(time.Duration, string)) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	defer client.CloseIdleConnections()
	body := slices.Clone(g.template)
	var sig []byte
	for !stop() {
		id := g.runID()
		sig = g.render(body, id, sig)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "workflow_run")
		req.Header.Set("X-GitHub-Delivery", "loadgen-"+strconv.FormatInt(id, 10))
		req.Header.Set("X-Hub-Signature-256", string(sig))
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		dup, err := accepted(resp)
		lat := time.Since(start)
		if err != nil {
			return err
		}
		measure(lat, outcome(resp.StatusCode, dup))
	}
	return nil
}

// accepted drains the response and reports a 202's duplicate flag.
func accepted(resp *http.Response) (dup bool, err error) {
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusAccepted && bytes.Contains(b, []byte(`"duplicate":true`)), nil
}

func outcome(status int, dup bool) string {
	switch {
	case status == http.StatusAccepted && dup:
		return "dup"
	case status == http.StatusAccepted:
		return "ok"
	default:
		return "HTTP " + strconv.Itoa(status)
	}
}
