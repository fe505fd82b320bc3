// Command webhookmem measures the webhook's memory under slow
// unauthenticated connections (issue 11), while valid deliveries go on.
//
// It builds cmd/webhook (or takes -webhook-bin, e.g. a binary of an older
// commit), starts a nats-server process with JetStream and the webhook as a
// separate process with its production defaults, and waits until /readyz
// answers 200. Then:
//
//   - it opens -conns connections that each send the headers of a
//     workflow_run delivery with a bogus X-Hub-Signature-256 and
//     Content-Length -content-length, then one byte, and hold. A
//     connection the webhook answers or closes (408 after the body
//     timeout, 503) is opened again at once, so that -conns stay open for
//     the whole attack;
//   - once they are all open, it sends valid signed deliveries, one at a
//     time with -interval between them, on a keep-alive connection for
//     -hold, recording each answer and its latency;
//   - it samples the webhook's VmRSS from /proc/<pid>/status every 50 ms
//     and reads its VmHWM (peak RSS) at the end. If VmRSS passes
//     -rss-limit the webhook is killed and the run reported as aborted,
//     so that a baseline without the fix cannot take the machine down.
//
// The result is one Markdown table row on stdout; progress goes to stderr.
//
//	go run ./bench/webhookmem -label after
//	go run ./bench/webhookmem -label before -webhook-bin /tmp/webhook-old
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

const (
	secret = "webhookmem-secret"
	mib    = 1 << 20
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "webhookmem:", err)
		os.Exit(1)
	}
}

type options struct {
	label         string
	root          string
	webhookBin    string
	natsBin       string
	conns         int
	contentLength int64
	hold          time.Duration
	interval      time.Duration
	rssLimit      int64
	keep          bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("webhookmem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.label, "label", "", "name of the result row, e.g. before or after")
	fs.StringVar(&o.root, "repo", "", "repository to build cmd/webhook from (default: the one holding the working directory)")
	fs.StringVar(&o.webhookBin, "webhook-bin", "", "webhook binary to measure instead of building -repo's cmd/webhook")
	fs.StringVar(&o.natsBin, "nats-bin", "", "nats-server binary (default <repo>/.cache/bin/nats-server, else PATH)")
	fs.IntVar(&o.conns, "conns", 1000, "slow connections held open")
	fs.Int64Var(&o.contentLength, "content-length", 26_000_000, "Content-Length the slow connections announce")
	fs.DurationVar(&o.hold, "hold", 30*time.Second, "how long to hold the slow connections and send valid deliveries once all are open")
	fs.DurationVar(&o.interval, "interval", 20*time.Millisecond, "pause between valid deliveries (0: back to back)")
	rssLimit := fs.Int64("rss-limit-mib", 3072, "kill the webhook and report the run as aborted once its VmRSS passes this")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.conns < 1 || o.hold <= 0 || *rssLimit <= 0 {
		return o, errors.New("-conns, -hold and -rss-limit-mib must be positive")
	}
	o.rssLimit = *rssLimit * mib
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	opt, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logger := log.New(stderr, "webhookmem: ", log.Ltime)
	if err := raiseFileLimit(uint64(opt.conns) + 256); err != nil {
		return err
	}
	if opt.root == "" && (opt.webhookBin == "" || opt.natsBin == "") {
		if opt.root, err = repoRoot(); err != nil {
			return err
		}
	}
	if opt.natsBin == "" {
		if opt.natsBin, err = findNATS(opt.root); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "webhookmem-")
	if err != nil {
		return err
	}
	defer func() {
		if opt.keep {
			logger.Printf("kept %s", dir)
		} else if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if opt.webhookBin == "" {
		opt.webhookBin = filepath.Join(dir, "webhook")
		logger.Printf("building %s/cmd/webhook", opt.root)
		build := exec.CommandContext(ctx, "go", "build", "-o", opt.webhookBin, "./cmd/webhook")
		build.Dir, build.Stdout, build.Stderr = opt.root, stderr, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build cmd/webhook: %w", err)
		}
	}

	natsPort, err := freePort()
	if err != nil {
		return err
	}
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(natsPort)
	nats, err := startChild(opt.natsBin, []string{"-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "-js", "-sd", filepath.Join(dir, "jetstream")},
		os.Environ(), filepath.Join(dir, "nats-server.log"))
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	defer nats.stop(5 * time.Second)

	hookPort, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(hookPort)
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "ARCHIVER_") || strings.HasPrefix(kv, "NATS_") || strings.HasPrefix(kv, "GITHUB_")
	})
	env = append(env, "GITHUB_WEBHOOK_SECRET="+secret, "NATS_URL="+natsURL, "ARCHIVER_LISTEN_ADDR="+addr)
	hook, err := startChild(opt.webhookBin, nil, env, filepath.Join(dir, "webhook.log"))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer hook.stop(25 * time.Second)
	if err := waitReady(ctx, "http://"+addr+"/readyz", hook); err != nil {
		return err
	}

	m := &measurement{opt: opt, addr: addr, pid: hook.cmd.Process.Pid, log: logger}
	if err := m.run(ctx, hook); err != nil {
		return err
	}
	m.report(stdout)
	if !opt.keep {
		logger.Printf("webhook log: %d lines (use -keep to look at them)", hook.lines())
	}
	return nil
}

// measurement is one attack on one webhook process.
type measurement struct {
	opt  options
	addr string
	pid  int
	log  *log.Logger

	idleRSS, maxRSS, hwm int64
	rss5s                int64  // VmRSS 5 s after the slow connections started
	aborted              string // why the attack was cut short, or ""

	opened, open              atomic.Int64 // slow connections
	answered                  sync.Map     // status line (or "closed") -> *atomic.Int64
	attackUp                  time.Duration
	sent, accepted            int
	otherStatus               map[string]int
	latencies                 []time.Duration
	validWindow, attackWindow time.Duration
}

func (m *measurement) run(ctx context.Context, hook *child) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	url := "http://" + m.addr + "/webhook"
	// Warm up: the first deliveries allocate the pools and connections.
	for i := range 20 {
		if status, _, err := deliver(ctx, client, url, int64(1_000_000+i)); err != nil || status != http.StatusAccepted {
			return fmt.Errorf("warm-up delivery: status %d, err %v", status, err)
		}
	}
	var err error
	if m.idleRSS, err = procStatus(m.pid, "VmRSS"); err != nil {
		return err
	}
	m.log.Printf("webhook pid %d ready, VmRSS %d MiB; opening %d slow connections", m.pid, m.idleRSS/mib, m.opt.conns)

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		m.sample(actx, cancel, hook)
	}()
	var attackers sync.WaitGroup
	start := time.Now()
	for i := range m.opt.conns {
		attackers.Go(func() { m.attack(actx, i) })
	}
	for m.open.Load() < int64(m.opt.conns) && actx.Err() == nil && time.Since(start) < time.Minute {
		time.Sleep(10 * time.Millisecond)
	}
	m.attackUp = time.Since(start)
	m.log.Printf("%d slow connections open after %s; sending valid deliveries for %s", m.open.Load(), m.attackUp.Round(time.Millisecond), m.opt.hold)

	m.otherStatus = map[string]int{}
	validStart := time.Now()
	for i := int64(0); time.Since(validStart) < m.opt.hold && actx.Err() == nil; i++ {
		m.sent++
		status, took, err := deliver(actx, client, url, 2_000_000+i)
		switch {
		case actx.Err() != nil:
			m.otherStatus["unanswered"]++ // when the attack was cut short
			continue
		case err != nil:
			m.otherStatus[shortErr(err)]++
		case status == http.StatusAccepted:
			m.accepted++
			m.latencies = append(m.latencies, took)
		default:
			m.otherStatus[strconv.Itoa(status)]++
		}
		if m.opt.interval > 0 && !sleep(actx, m.opt.interval) {
			break
		}
	}
	m.validWindow = time.Since(validStart)
	m.attackWindow = time.Since(start)
	if cause := context.Cause(actx); cause != nil && !errors.Is(cause, context.Canceled) {
		m.aborted = cause.Error()
	}
	cancel(nil)
	<-sampled
	if hwm, err := procStatus(m.pid, "VmHWM"); err == nil {
		m.hwm = max(m.hwm, hwm)
	}
	attackers.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// sample records the webhook's largest VmRSS, and ends the attack if it
// passes the limit (killing the webhook) or the webhook exits.
func (m *measurement) sample(ctx context.Context, abort context.CancelCauseFunc, hook *child) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	for {
		rss, err := procStatus(m.pid, "VmRSS")
		if err == nil {
			m.maxRSS = max(m.maxRSS, rss)
			if m.rss5s == 0 && time.Since(start) >= 5*time.Second {
				m.rss5s = rss
			}
			if hwm, err := procStatus(m.pid, "VmHWM"); err == nil {
				m.hwm = max(m.hwm, hwm)
			}
		}
		switch {
		case hook.exited():
			abort(fmt.Errorf("webhook exited: %s", hook.state()))
			return
		case rss > m.opt.rssLimit:
			m.log.Printf("webhook VmRSS %d MiB passed the %d MiB limit: killing it", rss/mib, m.opt.rssLimit/mib)
			abort(fmt.Errorf("killed at VmRSS %d MiB (limit %d MiB)", rss/mib, m.opt.rssLimit/mib)) // first, so that no answer is counted
			hook.kill()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// attack holds one slow connection open until ctx ends, opening it again
// whenever the webhook answers or closes it.
func (m *measurement) attack(ctx context.Context, i int) {
	head := fmt.Sprintf("POST /webhook HTTP/1.1\r\nHost: %s\r\nX-GitHub-Event: workflow_run\r\nX-GitHub-Delivery: slow-%d\r\n"+
		"Content-Type: application/json\r\nX-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n{",
		m.addr, i, strings.Repeat("0", 64), m.opt.contentLength)
	var d net.Dialer
	for ctx.Err() == nil {
		conn, err := d.DialContext(ctx, "tcp", m.addr)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.count("dial error")
			if !sleep(ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		if _, err := io.WriteString(conn, head); err != nil {
			conn.Close()
			m.count("write error")
			continue
		}
		m.opened.Add(1)
		m.open.Add(1)
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		status, _ := bufio.NewReader(conn).ReadString('\n')
		stop()
		conn.Close()
		m.open.Add(-1)
		if ctx.Err() != nil {
			return
		}
		if f := strings.Fields(status); len(f) >= 2 {
			m.count(f[1])
		} else {
			m.count("closed")
		}
	}
}

func (m *measurement) count(what string) {
	v, _ := m.answered.LoadOrStore(what, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (m *measurement) report(w io.Writer) {
	var answers []string
	m.answered.Range(func(k, v any) bool {
		answers = append(answers, fmt.Sprintf("%s×%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(answers)
	var others []string
	for k, n := range m.otherStatus {
		others = append(others, fmt.Sprintf("%s×%d", k, n))
	}
	slices.Sort(others)
	p50, p99 := "-", "-"
	if len(m.latencies) > 0 {
		slices.Sort(m.latencies)
		p50, p99 = ms(percentile(m.latencies, 0.50)), ms(percentile(m.latencies, 0.99))
	}
	verdict := "completed"
	if m.aborted != "" {
		verdict = "aborted: " + m.aborted
	}
	rss5s := "-"
	if m.rss5s > 0 {
		rss5s = strconv.FormatInt(m.rss5s/mib, 10)
	}
	fmt.Fprintln(w, "| run | slow conns (opened in total) | attack s | idle VmRSS MiB | VmRSS at 5 s MiB | peak VmHWM MiB | max sampled VmRSS MiB | valid sent | valid 202 | valid other | valid p50 | valid p99 | slow conns answered | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	fmt.Fprintf(w, "| %s | %d (%d) | %.1f | %d | %s | %d | %d | %d | %d | %s | %s | %s | %s | %s |\n",
		cmpOr(m.opt.label, "-"), m.opt.conns, m.opened.Load(), m.attackWindow.Seconds(), m.idleRSS/mib, rss5s, m.hwm/mib, m.maxRSS/mib,
		m.sent, m.accepted, cmpOr(strings.Join(others, " "), "0"), p50, p99,
		cmpOr(strings.Join(answers, " "), "none"), verdict)
}

// deliver sends one valid signed workflow_run delivery of run id.
func deliver(ctx context.Context, c *http.Client, url string, id int64) (int, time.Duration, error) {
	body, err := ghsim.WorkflowRunPayload(ghsim.RunPayload{InstallationID: 4242, RepoID: 777, Owner: "acme", Repo: "rocket", RunID: id, RunAttempt: 1})
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "workflow_run")
	req.Header.Set("X-GitHub-Delivery", "valid-"+strconv.FormatInt(id, 10))
	req.Header.Set("X-Hub-Signature-256", ghsim.Sign(secret, body))
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), err
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func shortErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "error"
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// raiseFileLimit raises the soft open-file limit to the hard one (the
// webhook inherits it) and checks that it allows need descriptors.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("setrlimit: %w", err)
		}
	}
	if lim.Cur < need {
		return fmt.Errorf("open-file limit %d is below the %d this run needs: raise the hard limit (ulimit -Hn) or lower -conns", lim.Cur, need)
	}
	return nil
}

func waitReady(ctx context.Context, url string, hook *child) error {
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if hook.exited() || time.Now().After(deadline) {
			return fmt.Errorf("webhook not ready after 30s (%s): log:\n%s", hook.state(), hook.logTail())
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: use -repo")
		}
		dir = parent
	}
}

func findNATS(root string) (string, error) {
	if p := filepath.Join(root, ".cache", "bin", "nats-server"); root != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("nats-server")
	if err != nil {
		return "", errors.New("no nats-server in <repo>/.cache/bin (make tools) or on PATH: use -nats-bin")
	}
	return p, nil
}

// procStatus returns a "kB" field of /proc/<pid>/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// child is a process whose output goes to a log file.
type child struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func startChild(bin string, args, env []string, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	c := &child{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) state() string {
	if !c.exited() {
		return "running"
	}
	if c.err != nil {
		return c.err.Error()
	}
	return "exited 0"
}

func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.done
}

// stop sends SIGTERM and kills the process after grace.
func (c *child) stop(grace time.Duration) {
	if c.exited() {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		c.kill()
	}
}

func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

func (c *child) lines() int {
	b, _ := os.ReadFile(c.logPath)
	return bytes.Count(b, []byte("\n"))
}
