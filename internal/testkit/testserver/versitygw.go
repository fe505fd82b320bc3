package testserver

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// VersityGWModule is the pinned versitygw built by [Binary] for [VersityGW].
const VersityGWModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// S3Access is how a client reaches a test S3 server: endpoint, root
// credentials, region, and an HTTP client of its own (no proxy, and only
// the test CA, never the environment's AWS_CA_BUNDLE). Servers embed it.
type S3Access struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	// CAFile holds the certificate to trust over TLS (AWS_CA_BUNDLE of a
	// child process), "" over HTTP.
	CAFile string

	client *awshttp.BuildableClient
}

// newS3Access returns the access to a server at endpoint over plain HTTP.
func newS3Access(endpoint, accessKey, secretKey, region string) S3Access {
	return S3Access{
		Endpoint:  endpoint,
		AccessKey: accessKey,
		SecretKey: secretKey,
		Region:    region,
		client:    awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.Proxy = nil }),
	}
}

// HTTPClient returns the HTTP client of [S3Access.AWSConfig].
func (a *S3Access) HTTPClient() *http.Client {
	return &http.Client{Transport: a.client.GetTransport()}
}

// AWSConfig returns an SDK configuration for the server: static
// credentials, region, endpoint and the server's HTTP client. It is built
// by hand, so the environment (AWS_CA_BUNDLE, AWS_PROFILE,
// AWS_ENDPOINT_URL_S3, ...) plays no part.
func (a *S3Access) AWSConfig() aws.Config {
	return aws.Config{
		Region:       a.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(a.AccessKey, a.SecretKey, ""),
		HTTPClient:   a.client,
		BaseEndpoint: aws.String(a.Endpoint),
	}
}

// Client returns a path-style S3 client for the server, with the SDK's
// default options otherwise; optFns adjust them.
func (a *S3Access) Client(optFns ...func(*s3.Options)) *s3.Client {
	return s3.NewFromConfig(a.AWSConfig(), append([]func(*s3.Options){func(o *s3.Options) {
		o.UsePathStyle = true
	}}, optFns...)...)
}

// NewBucket creates a bucket with a plain client and returns its name. An
// empty name picks a unique one.
func (a *S3Access) NewBucket(t testing.TB, name string) string {
	t.Helper()
	if name == "" {
		name = fmt.Sprintf("test-bucket-%d", bucketSeq.Add(1))
	}
	if _, err := a.Client().CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testserver: create bucket %s: %v", name, err)
	}
	return name
}

// Env returns the environment a child process (a worker binary) needs to
// reach the server through the SDK's standard configuration chain:
// AWS_ENDPOINT_URL_S3, AWS_REGION, keys, ARCHIVER_S3_FORCE_PATH_STYLE=true
// and AWS_CA_BUNDLE (empty, meaning unset, over HTTP).
func (a *S3Access) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=" + a.Endpoint,
		"AWS_REGION=" + a.Region,
		"AWS_ACCESS_KEY_ID=" + a.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + a.SecretKey,
		"AWS_CA_BUNDLE=" + a.CAFile,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PROFILE=",
		"ARCHIVER_S3_FORCE_PATH_STYLE=true",
	}
}

// s3Ready answers nil once the server answers a signed ListBuckets: it
// serves S3 and knows the root credentials.
func (a *S3Access) s3Ready() func(context.Context) error {
	client := a.Client(func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	}
}

// VersityGWOption configures [VersityGW].
type VersityGWOption func(*versityGWOptions)

type versityGWOptions struct {
	args []string
}

// WithVersityGWArgs adds global flags to the versitygw command line, before
// the "posix" backend command (for example "--debug").
func WithVersityGWArgs(args ...string) VersityGWOption {
	return func(o *versityGWOptions) { o.args = append(o.args, args...) }
}

// VersityGWServer is a versitygw process (Versity's S3 gateway) serving one
// directory through its posix backend on a fixed port: the second S3
// implementation the store is tested against. Its fields are set once by
// [VersityGW] and stay the same across [VersityGWServer.Stop] and
// [VersityGWServer.Start].
type VersityGWServer struct {
	S3Access
	// DataDir is the posix backend's root: one directory per bucket, one
	// file per object, metadata in user extended attributes.
	DataDir string

	t    testing.TB
	bin  string
	port int
	opts versityGWOptions

	mu   sync.Mutex
	proc *process
	runs int
}

// VersityGW starts versitygw for the test and stops it in t.Cleanup. It
// fails the test (never skips it) if the binary cannot be found or built
// ($ARCHIVER_VERSITYGW_BIN, <repo root>/.cache/bin/versitygw, PATH, or
// "go install" of [VersityGWModule]), or if the server does not answer S3
// requests within a minute.
//
// The posix backend keeps object metadata in user extended attributes of
// the files under t.TempDir(), and versitygw exits at start ("xattr check
// failed") on a file system without them: ext4, xfs and btrfs have them,
// so does tmpfs on recent kernels; otherwise point TMPDIR elsewhere.
func VersityGW(t testing.TB, opts ...VersityGWOption) *VersityGWServer {
	t.Helper()
	var o versityGWOptions
	for _, opt := range opts {
		opt(&o)
	}
	bin := Binary(t, "versitygw", "ARCHIVER_VERSITYGW_BIN", VersityGWModule)
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &VersityGWServer{
		S3Access: newS3Access("http://"+hostPort(port), "archiver-test", rand.Text(), MinIORegion),
		DataDir:  dataDir,
		t:        t,
		bin:      bin,
		port:     port,
		opts:     o,
	}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Start starts the server (again) on the same port and directory and waits
// until it answers a signed ListBuckets. It does nothing if the server is
// running. Call it from the test's goroutine: it fails the test.
func (s *VersityGWServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return
	}
	args := append([]string{"--port", hostPort(s.port), "--region", s.Region, "--quiet"}, s.opts.args...)
	args = append(args, "posix", s.DataDir)
	// Only what it needs: versitygw reads many VGW_* and ROOT_* variables,
	// and the root secret stays off the command line.
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Dir(s.DataDir),
		"ROOT_ACCESS_KEY_ID=" + s.AccessKey,
		"ROOT_SECRET_ACCESS_KEY=" + s.SecretKey,
	}
	s.runs++
	logPath := filepath.Join(filepath.Dir(s.DataDir), "versitygw-"+strconv.Itoa(s.runs)+".log")
	p, err := startProcess(s.bin, args, env, logPath)
	if err != nil {
		s.t.Fatalf("testserver: versitygw: %v", err)
	}
	if err := p.waitReady(s.t.Context(), s.s3Ready()); err != nil {
		p.stop(syscall.SIGKILL, 0)
		s.t.Fatalf("testserver: versitygw %s (%s): %v\n--- versitygw log ---\n%s", s.Endpoint, s.bin, err, p.logTail())
	}
	s.proc = p
}

// Stop kills the server, as a crash would, and waits for it to exit. The
// directory and port are kept for [VersityGWServer.Start]. Stopping a
// stopped server does nothing.
func (s *VersityGWServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.stop(syscall.SIGKILL, 0)
	s.proc = nil
}
