package testserver_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
)

func TestMinIOStopStart(t *testing.T) {
	srv := testserver.MinIO(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") || srv.Region != "us-east-1" {
		t.Fatalf("endpoint %s, region %s", srv.Endpoint, srv.Region)
	}
	bucket := srv.NewBucket(t, "kept")
	client := srv.Client()
	if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	srv.Stop() // idempotent
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := srv.Client(func(o *s3.Options) { o.RetryMaxAttempts = 1 }).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err == nil {
		t.Fatal("HeadBucket succeeded while MinIO is stopped")
	}

	srv.Start() // same port, same data
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject after restart: %v", err)
	}
	defer out.Body.Close()
	if b, _ := io.ReadAll(out.Body); string(b) != "v" {
		t.Errorf("object after restart = %q, want v", b)
	}
}

func TestMinIOTLS(t *testing.T) {
	srv := testserver.MinIO(t, testserver.WithTLS())
	if !strings.HasPrefix(srv.Endpoint, "https://127.0.0.1:") || len(srv.CAPEM) == 0 || srv.CAFile == "" {
		t.Fatalf("endpoint %s, CA %d bytes in %q", srv.Endpoint, len(srv.CAPEM), srv.CAFile)
	}
	// Without the test CA the certificate is refused...
	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	if resp, err := plain.Get(srv.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Fatal("a client without the test CA accepted the certificate")
	}
	// ...and with it accepted.
	resp, err := srv.HTTPClient().Get(srv.Endpoint + "/minio/health/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %s", resp.Status)
	}
	bucket := srv.NewBucket(t, "")
	if _, err := srv.Client().HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("HeadBucket over TLS: %v", err)
	}
}

// checkJetStreamSurvivesRestart publishes a message, restarts the server
// and reads the message back over the same (reconnected) connection.
func checkJetStreamSurvivesRestart(t *testing.T, srv *testserver.NATSServer, restart func()) {
	t.Helper()
	reconnected := make(chan struct{}, 1)
	nc, err := nats.Connect(srv.URL,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "jobs.1", []byte("job")); err != nil {
		t.Fatal(err)
	}

	restart()

	select {
	case <-reconnected:
	case <-time.After(30 * time.Second):
		t.Fatal("client did not reconnect within 30 s")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "JOBS")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("message after restart: %v", err)
	}
	if string(msg.Data) != "job" {
		t.Fatalf("message after restart = %q, want job", msg.Data)
	}
}

func TestNATSEmbeddedRestart(t *testing.T) {
	srv := testserver.NATS(t)
	if srv.Embedded() == nil || !strings.HasPrefix(srv.URL, "nats://127.0.0.1:") {
		t.Fatalf("URL %s, embedded %v", srv.URL, srv.Embedded())
	}
	checkJetStreamSurvivesRestart(t, srv, srv.Restart)
}

func TestNATSBinaryKillStart(t *testing.T) {
	srv := testserver.NATSBinary(t)
	if srv.Embedded() != nil {
		t.Fatal("NATSBinary returned an embedded server")
	}
	checkJetStreamSurvivesRestart(t, srv, func() {
		srv.Stop() // graceful: the stream is flushed
		srv.Start()
	})
	srv.Kill()
	srv.Start()
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatalf("connect after kill and start: %v", err)
	}
	nc.Close()
}
