package archivectl_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/archivetest"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
	"github.com/artifact-archiver/artifact-archiver/pkg/events"
)

// result is one archivectl invocation's outcome.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// env is the environment archivectl sees (through getenv).
type env map[string]string

func (e env) with(kv ...string) env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// run runs archivectl with args and stdin "".
func run(t *testing.T, e env, args ...string) result {
	t.Helper()
	return runStdin(t, e, "", args...)
}

func runStdin(t *testing.T, e env, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	code := archivectl.Main(ctx, args, func(k string) string { return e[k] }, strings.NewReader(stdin), &out, &errb)
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	t.Logf("archivectl %s\n%s", strings.Join(args, " "), r)
	return r
}

// want fails the test unless r exited with code.
func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\n%s", r.code, code, r)
	}
	return r
}

// s3Env is an archiver wired to the simulator and MinIO, with the AWS
// SDK's environment pointing at MinIO (the production path of
// destination.Open: the default chain). Tests using it cannot be parallel.
type s3Env struct {
	*archivetest.Env
	env env
}

func newS3Env(t *testing.T) *s3Env {
	t.Helper()
	e := &s3Env{Env: archivetest.New(t, nil)}
	for _, kv := range e.MinIO.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	e.env = env{
		"ARCHIVER_DESTINATION":         "s3://" + e.Bucket + "/" + e.Prefix,
		"ARCHIVER_S3_FORCE_PATH_STYLE": "true",
		"GITHUB_API_URL":               e.Sim.URL(),
		"GITHUB_APP_ID":                "4242",
		"GITHUB_APP_PRIVATE_KEY":       string(e.AppKey),
	}
	return e
}

// archiveRun archives a run as the worker would, and fails the test unless
// it is complete.
func archiveRun(t *testing.T, a *archivetest.Env, repo ghsim.Repo, run ghsim.Run) *archive.Manifest {
	t.Helper()
	res, err := a.Arch.ArchiveRun(t.Context(), archivetest.Event(repo, run), true)
	if err != nil {
		t.Fatalf("archive run %d: %v", run.ID, err)
	}
	return res.Manifest
}

// content returns the body the simulator serves for an artifact.
func content(t *testing.T, sim *ghsim.Server, id int64) []byte {
	t.Helper()
	c, err := sim.Content(id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jetStream starts NATS with the streams provisioned (the worker consumer
// too when withConsumer) and returns a client and the topology.
func jetStream(t *testing.T, withConsumer bool) (*testserver.NATSServer, jetstream.JetStream, events.Topology) {
	t.Helper()
	srv := testserver.NATS(t)
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo := events.Topology{}.WithDefaults()
	if withConsumer {
		err = events.Provision(t.Context(), js, topo)
	} else {
		err = events.ProvisionStreams(t.Context(), js, topo)
	}
	if err != nil {
		t.Fatal(err)
	}
	return srv, js, topo
}

// streamMsgs returns every message of a stream, in order.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err == jetstream.ErrMsgNotFound {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// mustContain fails unless s contains every part.
func mustContain(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Fatalf("%s lacks %q:\n%s", what, p, s)
		}
	}
}

func mustNotContain(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(s, p) {
			t.Fatalf("%s contains %q:\n%s", what, p, s)
		}
	}
}
