//go:build integration

package integration

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
)

// processStack runs every component as a local process on loopback ports:
// the pinned nats-server and S3 server (MinIO, or versitygw with
// StackConfig.S3Backend) binaries (internal/testkit/testserver), the
// simulator in the test process, and our webhook and worker binaries.
type processStack struct {
	t        *testing.T
	cfg      StackConfig
	dir      string
	nats     *testserver.NATSServer
	s3       s3Server
	s3Access *testserver.S3Access
	sim      *ghsim.Server
	simc     *SimClient
	webhook  *child
	hookURL  string
	opsURL   string
	workers  []*processWorker
}

var _ Stack = (*processStack)(nil)

func startProcessStack(t *testing.T, cfg StackConfig) Stack {
	t.Helper()
	s := &processStack{t: t, cfg: cfg, dir: t.TempDir()}
	s.nats = testserver.NATSBinary(t)
	s.s3, s.s3Access = startS3(t, cfg.S3Backend)
	locked := cfg.s3Backend() == S3MinIORetention
	if _, err := s.s3Access.Client().CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: &locked}); err != nil {
		t.Fatalf("create bucket %s on %s: %v", bucket, cfg.s3Backend(), err)
	}

	sc, err := ghsim.LoadScenario(writeScenario(t, cfg.Scenario, s.dir))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := sc.Options()
	if err != nil {
		t.Fatal(err)
	}
	opts.Admin = true
	if s.sim, err = ghsim.New(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.sim.Close() })
	if _, err := s.sim.Load(sc); err != nil {
		t.Fatal(err)
	}
	s.simc = newSimClient(t, s.sim.URL())

	hookAddr, opsAddr := freeAddr(t), freeAddr(t)
	env := cfg.webhookEnv(s.nats.URL, webhookSecret())
	env["ARCHIVER_LISTEN_ADDR"], env["ARCHIVER_METRICS_ADDR"] = hookAddr, opsAddr
	s.hookURL, s.opsURL = "http://"+hookAddr+"/webhook", "http://"+opsAddr+"/metrics"
	s.webhook = startChild(t, "webhook", suite.bins.Webhook, env, filepath.Join(s.dir, "webhook.log"))
	s.webhook.waitReady(t, "http://"+opsAddr+"/readyz")
	for range cfg.workerCount() {
		s.StartWorker()
	}
	return s
}

func (s *processStack) Mode() string              { return "process" }
func (s *processStack) Sim() *SimClient           { return s.simc }
func (s *processStack) WebhookURL() string        { return s.hookURL }
func (s *processStack) WebhookMetricsURL() string { return s.opsURL }
func (s *processStack) NATSURL() string           { return s.nats.URL }
func (s *processStack) StopNATS()                 { s.nats.Stop() }
func (s *processStack) KillNATS()                 { s.nats.Kill() }
func (s *processStack) StartNATS()                { s.t.Helper(); s.nats.Start() }
func (s *processStack) RestartNATS()              { s.t.Helper(); s.nats.Restart() }
func (s *processStack) StopMinIO()                { s.s3.Stop() }
func (s *processStack) StartMinIO()               { s.t.Helper(); s.s3.Start() }
func (s *processStack) S3() *s3.Client            { return s.s3Access.Client(s3Options) }
func (s *processStack) Workers() []Worker         { return workersOf(s.workers) }
func (s *processStack) blobHost() string          { return "localhost" }
func (w *processWorker) Name() string             { return w.name }
func (w *processWorker) MetricsURL() string       { return w.metrics }
func (w *processWorker) Alive() bool              { return !w.killed }
func (w *processWorker) LastMetrics() Metrics     { return w.last }

// s3Server is the S3 server of a process stack: a *testserver.MinIOServer
// or a *testserver.VersityGWServer.
type s3Server interface {
	// Stop kills the server, keeping its data; Start starts it again on the
	// same port and waits until it serves.
	Stop()
	Start()
}

// startS3 starts the S3 server of backend (see StackConfig.S3Backend) and
// returns it with its access (for the workers and the test's clients).
func startS3(t *testing.T, backend string) (s3Server, *testserver.S3Access) {
	t.Helper()
	switch backend {
	case "", S3MinIO:
		srv := testserver.MinIO(t)
		return srv, &srv.S3Access
	case S3VersityGW:
		srv := testserver.VersityGW(t)
		return srv, &srv.S3Access
	case S3MinIORetention:
		srv := testserver.MinIO(t, testserver.WithKMSKey(retentionKMSKey))
		return srv, &srv.S3Access
	}
	t.Fatalf("StackConfig.S3Backend %q: want %q, %q or %q", backend, S3MinIO, S3VersityGW, S3MinIORetention)
	return nil, nil
}

// workersOf converts a slice of concrete workers.
func workersOf[W Worker](ws []W) []Worker {
	out := make([]Worker, len(ws))
	for i, w := range ws {
		out[i] = w
	}
	return out
}

// s3Options makes the test's S3 clients quiet about checksums they cannot
// validate (multipart objects carry composite ones).
func s3Options(o *s3.Options) {
	o.UsePathStyle = true
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
}

// processWorker is a worker binary running as a child process.
type processWorker struct {
	t       *testing.T
	name    string
	c       *child
	metrics string
	killed  bool
	last    Metrics
}

func (s *processStack) StartWorker() Worker {
	s.t.Helper()
	name := fmt.Sprintf("worker-%d", len(s.workers)+1)
	addr := freeAddr(s.t)
	env := s.cfg.workerEnv(len(s.workers), s.nats.URL, s.sim.URL(), s.blobHost(), s.s3Access.AccessKey, s.s3Access.SecretKey)
	env["ARCHIVER_METRICS_ADDR"] = addr
	env["AWS_ENDPOINT_URL_S3"] = s.s3Access.Endpoint
	w := &processWorker{t: s.t, name: name, metrics: "http://" + addr + "/metrics"}
	w.c = startChild(s.t, name, suite.bins.Worker, env, filepath.Join(s.dir, name+".log"))
	w.c.waitReady(s.t, "http://"+addr+"/readyz")
	s.workers = append(s.workers, w)
	return w
}

func (w *processWorker) Kill() {
	w.t.Helper()
	if w.killed {
		return
	}
	m, err := scrape(w.metrics)
	if err != nil {
		w.t.Logf("%s: last scrape before kill: %v", w.name, err)
	}
	w.last = m
	w.c.kill()
	w.killed = true
}

// child is one of our binaries running as a child process, its output in
// a log file that is shown when the test fails.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// startChild starts bin with exactly env (plus PATH and HOME): nothing
// leaks in from the test's environment (AWS_CA_BUNDLE, proxies, ...). It is
// stopped with SIGTERM (then SIGKILL) in t.Cleanup, and dies with the test
// binary.
func startChild(t *testing.T, name, bin string, env map[string]string, logPath string) *child {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Dir(logPath)}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- %s log (tail) ---\n%s", name, tailFile(logPath, int64(logTail())))
		}
	})
	return c
}

// waitReady polls url until it answers 200, failing the test if the
// process exits first or a minute passes.
func (c *child) waitReady(t *testing.T, url string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		select {
		case <-c.exited:
			t.Fatalf("%s exited before it was ready (%v):\n%s", c.name, c.waitErr, tailFile(c.logPath, 8<<10))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after a minute: %v\n%s", c.name, err, tailFile(c.logPath, 8<<10))
		}
		sleepCtx(t.Context(), 50*time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the exit.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// stop sends SIGTERM, and SIGKILL after grace.
func (c *child) stop(grace time.Duration) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		c.kill()
	}
}

// freeAddr returns 127.0.0.1:PORT with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := testserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// tailFile returns the last n bytes of a file.
func tailFile(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}
