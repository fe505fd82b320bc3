package testserver_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
)

func TestVersityGWStopStart(t *testing.T) {
	srv := testserver.VersityGW(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") || srv.Region != "us-east-1" || srv.CAFile != "" {
		t.Fatalf("endpoint %s, region %s, CA file %q", srv.Endpoint, srv.Region, srv.CAFile)
	}
	bucket := srv.NewBucket(t, "kept")
	client := srv.Client()
	if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("v"),
		Metadata: map[string]string{"sha256": "abc"},
	}); err != nil {
		t.Fatal(err)
	}
	// The posix backend: the object is a file, its metadata in xattrs.
	if b, err := os.ReadFile(filepath.Join(srv.DataDir, bucket, "k")); err != nil || string(b) != "v" {
		t.Fatalf("object file = %q, %v; want v", b, err)
	}

	srv.Stop()
	srv.Stop() // idempotent
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := srv.Client(func(o *s3.Options) { o.RetryMaxAttempts = 1 }).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err == nil {
		t.Fatal("HeadBucket succeeded while versitygw is stopped")
	}

	srv.Start() // same port, same data
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject after restart: %v", err)
	}
	defer out.Body.Close()
	if b, _ := io.ReadAll(out.Body); string(b) != "v" || out.Metadata["sha256"] != "abc" {
		t.Errorf("object after restart = %q with metadata %v, want v with sha256=abc", b, out.Metadata)
	}
}

func TestVersityGWEnv(t *testing.T) {
	srv := testserver.VersityGW(t)
	env := srv.Env()
	for _, want := range []string{
		"AWS_ENDPOINT_URL_S3=" + srv.Endpoint,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=" + srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + srv.SecretKey,
		"ARCHIVER_S3_FORCE_PATH_STYLE=true",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("Env() lacks %s: %q", want, env)
		}
	}
	// Another secret is refused: the server checks the credentials.
	wrong := srv.S3Access
	wrong.SecretKey = "not-" + srv.SecretKey
	if _, err := wrong.Client(func(o *s3.Options) { o.RetryMaxAttempts = 1 }).ListBuckets(t.Context(), &s3.ListBucketsInput{}); err == nil {
		t.Error("ListBuckets with a wrong secret succeeded")
	}
}

func TestVersityGWArgs(t *testing.T) {
	accessLog := filepath.Join(t.TempDir(), "access.log")
	srv := testserver.VersityGW(t, testserver.WithVersityGWArgs("--access-log", accessLog))
	bucket := srv.NewBucket(t, "")
	testserver.Eventually(t, 10*time.Second, "the access log to record the CreateBucket", func() bool {
		b, _ := os.ReadFile(accessLog)
		return strings.Contains(string(b), bucket)
	})
}
