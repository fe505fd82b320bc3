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
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

// The bucket, prefix and region of the benchmark's archive.
const (
	bucket = "catalog-bench"
	prefix = "gha"
	region = "us-east-1"
)

// minio is the MinIO child process the archive lives in.
type minio struct {
	proc                 *benchkit.Process
	endpoint             string
	accessKey, secretKey string
	dir                  string
	client               *s3.Client
}

// startMinIO starts MinIO on a free loopback port with its data in dir,
// waits until it answers a signed request and creates the bucket.
func startMinIO(ctx context.Context, bin, dir string) (*minio, error) {
	ports := make([]int, 2)
	for i := range ports {
		p, err := benchkit.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	data := filepath.Join(dir, "minio-data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, err
	}
	m := &minio{endpoint: "http://" + addr(ports[0]), accessKey: "catalog-bench", secretKey: rand.Text(), dir: dir}
	env := append(childEnv(), "MINIO_ROOT_USER="+m.accessKey, "MINIO_ROOT_PASSWORD="+m.secretKey, "MINIO_UPDATE=off", "MINIO_BROWSER=off")
	proc, err := benchkit.StartProcess(bin, []string{"server", data, "--address", addr(ports[0]), "--console-address", addr(ports[1]), "--quiet"},
		env, filepath.Join(dir, "minio.log"), nil)
	if err != nil {
		return nil, err
	}
	m.proc = proc
	m.client = s3.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(m.accessKey, m.secretKey, ""),
		// No proxy, no AWS_CA_BUNDLE, and connections for every writer.
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.Proxy = nil
			tr.MaxIdleConnsPerHost = 256
		}),
		BaseEndpoint: aws.String(m.endpoint),
	}, func(o *s3.Options) { o.UsePathStyle = true })
	err = benchkit.Poll(ctx, time.Minute, 50*time.Millisecond, func() (bool, error) {
		if proc.Exited() {
			return false, fmt.Errorf("minio exited: %s", proc.LogTail())
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := m.client.ListBuckets(pctx, &s3.ListBucketsInput{}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		return err == nil, nil
	})
	if err == nil {
		_, err = m.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	}
	if err != nil {
		m.stop()
		return nil, fmt.Errorf("minio at %s: %w", m.endpoint, err)
	}
	return m, nil
}

func (m *minio) stop() { m.proc.Stop(syscall.SIGTERM, 5*time.Second) }

// store is the archive the generator and compaction write through.
func (m *minio) store(ctx context.Context) (archive.Store, error) {
	return s3store.New(ctx, s3store.Config{Bucket: bucket, Prefix: prefix, Client: m.client})
}

// archivectlEnv is archivectl's environment: the destination and the AWS
// SDK chain pointing at MinIO, and nothing from ours that could change
// where it goes.
func (m *minio) archivectlEnv() []string {
	return append(childEnv(),
		"ARCHIVER_DESTINATION=s3://"+bucket+"/"+prefix,
		"ARCHIVER_S3_FORCE_PATH_STYLE=true",
		"AWS_ENDPOINT_URL_S3="+m.endpoint,
		"AWS_REGION="+region,
		"AWS_ACCESS_KEY_ID="+m.accessKey,
		"AWS_SECRET_ACCESS_KEY="+m.secretKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(m.dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(m.dir, "no-aws-credentials"),
	)
}

// childEnv is our environment without the AWS, archiver and MinIO
// settings (AWS_CA_BUNDLE, for this machine's proxy, breaks a plain-HTTP
// SDK client), with loopback excluded from any proxy.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "ARCHIVER_") || strings.HasPrefix(k, "MINIO_") || strings.EqualFold(k, "NO_PROXY") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
}
