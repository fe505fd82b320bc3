package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
)

// The S3 servers the bench measures against.
const (
	backendMinIO     = "minio"
	backendVersityGW = "versitygw"
)

// startBackend starts the S3 server name (a child process) on a free port
// with its data under the work directory, waits until it answers, and
// creates the bucket. Every leg then writes into it.
func (b *bench) startBackend(ctx context.Context, name string) error {
	port, err := benchkit.FreePort()
	if err != nil {
		return err
	}
	data := filepath.Join(b.dir, name+"-data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	b.backend = name
	b.accessKey, b.secretKey = "transfer-bench", rand.Text()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	b.endpoint = "http://" + addr
	var bin string
	var args, env []string
	switch name {
	case backendMinIO:
		consolePort, err := benchkit.FreePort()
		if err != nil {
			return err
		}
		bin = b.opt.minio
		args = []string{"server", data, "--address", addr, "--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(consolePort)), "--quiet"}
		env = append(baseEnv(), "MINIO_ROOT_USER="+b.accessKey, "MINIO_ROOT_PASSWORD="+b.secretKey, "MINIO_UPDATE=off", "MINIO_BROWSER=off")
	case backendVersityGW:
		bin = b.opt.versitygw
		args = []string{"--access", b.accessKey, "--secret", b.secretKey, "--port", addr, "posix", data}
		env = baseEnv()
	default:
		return fmt.Errorf("unknown backend %q", name)
	}
	c, err := benchkit.StartProcess(bin, args, env, filepath.Join(b.dir, name+".log"), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	b.server = c
	b.s3 = s3.NewFromConfig(aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(b.accessKey, b.secretKey, ""),
		BaseEndpoint: aws.String(b.endpoint),
		// Built by hand: no proxy, and AWS_CA_BUNDLE plays no part.
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.Proxy = nil }),
	}, func(o *s3.Options) { o.UsePathStyle = true })
	// Ready when it answers a signed request (MinIO's health check would
	// do for MinIO alone).
	if err := benchkit.Poll(ctx, time.Minute, 50*time.Millisecond, func() (bool, error) {
		if c.Exited() {
			return false, fmt.Errorf("%s exited: %s", name, c.LogTail())
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := b.s3.ListBuckets(pctx, &s3.ListBucketsInput{}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("%s %s not answering: %w", name, b.endpoint, err)
	}
	if _, err := b.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("%s: create bucket: %w", name, err)
	}
	b.log.Printf("%s at %s", name, b.endpoint)
	return nil
}

// stopBackend stops the S3 server, if one runs.
func (b *bench) stopBackend() {
	if b.server != nil {
		b.server.Stop(syscall.SIGTERM, 5*time.Second)
		b.server = nil
	}
}

// awsEnv is the SDK environment of a child writing into the S3 server:
// endpoint, region and keys, and no shared config or instance metadata.
func (b *bench) awsEnv() []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=" + b.endpoint,
		"AWS_REGION=" + region,
		"AWS_ACCESS_KEY_ID=" + b.accessKey,
		"AWS_SECRET_ACCESS_KEY=" + b.secretKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(b.dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(b.dir, "no-aws-credentials"),
	}
}
