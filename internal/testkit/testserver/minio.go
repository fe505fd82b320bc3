package testserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MinIORegion is the region of every test MinIO.
const MinIORegion = "us-east-1"

// MinIOOption configures [MinIO].
type MinIOOption func(*minioOptions)

type minioOptions struct {
	tls bool
	env []string
}

// WithTLS serves HTTPS with a self-signed certificate generated for the
// test (MinIO's --certs-dir). Clients trust it through
// [MinIOServer.HTTPClient], [MinIOServer.AWSConfig] or [MinIOServer.CAPEM].
func WithTLS() MinIOOption { return func(o *minioOptions) { o.tls = true } }

// WithMinIOEnv adds "KEY=value" settings to the MinIO process environment.
func WithMinIOEnv(kv ...string) MinIOOption {
	return func(o *minioOptions) { o.env = append(o.env, kv...) }
}

// WithKMSKey gives the server a built-in KMS with one random key named
// name (MINIO_KMS_SECRET_KEY), so that it serves SSE-S3 (AES256) and
// SSE-KMS (aws:kms with name as the key id); without one MinIO answers
// 501 to SSE requests.
func WithKMSKey(name string) MinIOOption {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return WithMinIOEnv("MINIO_KMS_SECRET_KEY=" + name + ":" + base64.StdEncoding.EncodeToString(key))
}

// MinIOServer is a MinIO process serving one data directory on a fixed
// port. Its fields are set once by [MinIO] and stay the same across
// [MinIOServer.Stop] and [MinIOServer.Start].
type MinIOServer struct {
	Endpoint  string // http://127.0.0.1:PORT, or https:// with WithTLS
	AccessKey string
	SecretKey string
	Region    string // always MinIORegion
	DataDir   string
	// CAPEM is the certificate to trust in TLS mode, nil over HTTP.
	CAPEM []byte
	// CAFile holds CAPEM (for AWS_CA_BUNDLE of a child process), "" over HTTP.
	CAFile string

	t           testing.TB
	bin         string
	port        int
	consolePort int
	certsDir    string
	opts        minioOptions
	client      *awshttp.BuildableClient

	mu   sync.Mutex
	proc *process
	runs int
}

// MinIO starts a MinIO server for the test and stops it in t.Cleanup. It
// fails the test (never skips it) if the binary cannot be found or built, or
// if the server does not become healthy within a minute.
func MinIO(t testing.TB, opts ...MinIOOption) *MinIOServer {
	t.Helper()
	var o minioOptions
	for _, opt := range opts {
		opt(&o)
	}
	bin := Binary(t, "minio", "ARCHIVER_MINIO_BIN", MinIOModule)
	root := t.TempDir()
	s := &MinIOServer{
		AccessKey: "archiver-test",
		SecretKey: rand.Text(),
		Region:    MinIORegion,
		DataDir:   filepath.Join(root, "data"),
		t:         t,
		bin:       bin,
		opts:      o,
	}
	if err := os.Mkdir(s.DataDir, 0o755); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	var err error
	if s.port, err = FreePort(); err != nil {
		t.Fatal(err)
	}
	if s.consolePort, err = FreePort(); err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	var pool *x509.CertPool
	if o.tls {
		scheme = "https"
		certPEM, keyPEM, err := selfSignedCert()
		if err != nil {
			t.Fatal(err)
		}
		s.certsDir = filepath.Join(root, "certs")
		s.CAFile = filepath.Join(s.certsDir, "public.crt")
		if err := os.Mkdir(s.certsDir, 0o700); err != nil {
			t.Fatalf("testserver: %v", err)
		}
		if err := os.WriteFile(s.CAFile, certPEM, 0o644); err != nil {
			t.Fatalf("testserver: %v", err)
		}
		if err := os.WriteFile(filepath.Join(s.certsDir, "private.key"), keyPEM, 0o600); err != nil {
			t.Fatalf("testserver: %v", err)
		}
		s.CAPEM = certPEM
		pool = x509.NewCertPool()
		pool.AppendCertsFromPEM(certPEM)
	}
	s.Endpoint = fmt.Sprintf("%s://%s", scheme, hostPort(s.port))
	// A client of our own: no proxy, and only our CA (never the
	// environment's AWS_CA_BUNDLE, which is for a proxy on this machine).
	s.client = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = nil
		if pool != nil {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tr.TLSClientConfig.RootCAs = pool
		}
	})
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Start starts the server (again) on the same port and data directory and
// waits until it serves requests (see minioReady). It does nothing if the
// server is running. Call it from the test's goroutine: it fails the test.
func (s *MinIOServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return
	}
	args := []string{"server", s.DataDir,
		"--address", hostPort(s.port),
		"--console-address", hostPort(s.consolePort),
		"--quiet",
	}
	if s.certsDir != "" {
		args = append(args, "--certs-dir", s.certsDir)
	}
	env := append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_UPDATE=off",
		"MINIO_BROWSER=off",
	)
	env = append(env, s.opts.env...)
	s.runs++
	logPath := filepath.Join(filepath.Dir(s.DataDir), "minio-"+strconv.Itoa(s.runs)+".log")
	p, err := startProcess(s.bin, args, env, logPath)
	if err != nil {
		s.t.Fatalf("testserver: minio: %v", err)
	}
	probe := &http.Client{Transport: s.client.GetTransport(), Timeout: 2 * time.Second}
	if err := p.waitReady(s.t.Context(), minioReady(probe, s.Endpoint)); err != nil {
		p.stop(syscall.SIGKILL, 0)
		s.t.Fatalf("testserver: minio %s (%s): %v\n--- minio log ---\n%s", s.Endpoint, s.bin, err, p.logTail())
	}
	s.proc = p
}

// minioReady answers nil once MinIO serves S3 requests. Its health
// endpoints answer 200 before the object layer is initialised, marking
// that state only with "x-minio-server-status: offline" (requests then get
// 503 XMinioServerNotInitialized), so the header is checked too.
func minioReady(client *http.Client, endpoint string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/minio/health/ready", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s/minio/health/ready: %s", endpoint, resp.Status)
		}
		if st := resp.Header.Get("X-Minio-Server-Status"); st == "offline" {
			return fmt.Errorf("minio is up but not initialised yet (x-minio-server-status: %s)", st)
		}
		return nil
	}
}

// Stop kills the server, as a crash would, and waits for it to exit. The
// data directory and port are kept for [MinIOServer.Start]. Stopping a
// stopped server does nothing.
func (s *MinIOServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.stop(syscall.SIGKILL, 0)
	s.proc = nil
}

// HTTPClient returns an HTTP client that trusts the server's certificate
// and uses no proxy. It is the client of [MinIOServer.AWSConfig].
func (s *MinIOServer) HTTPClient() *http.Client {
	return &http.Client{Transport: s.client.GetTransport()}
}

// AWSConfig returns an SDK configuration for the server: static
// credentials, region, endpoint and an HTTP client that trusts the test CA.
// It is built by hand, so the environment (AWS_CA_BUNDLE, AWS_PROFILE,
// AWS_ENDPOINT_URL_S3, ...) plays no part.
func (s *MinIOServer) AWSConfig() aws.Config {
	return aws.Config{
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:   s.client,
		BaseEndpoint: aws.String(s.Endpoint),
	}
}

// Client returns a path-style S3 client for the server, with the SDK's
// default options otherwise; optFns adjust them.
func (s *MinIOServer) Client(optFns ...func(*s3.Options)) *s3.Client {
	return s3.NewFromConfig(s.AWSConfig(), append([]func(*s3.Options){func(o *s3.Options) {
		o.UsePathStyle = true
	}}, optFns...)...)
}

var bucketSeq atomic.Int64

// BucketOption configures a bucket made by [MinIOServer.NewBucket].
type BucketOption func(*bucketOptions)

type bucketOptions struct {
	objectLock bool
	retention  *types.DefaultRetention
}

// WithObjectLock creates the bucket with Object Lock enabled (which also
// turns versioning on): MinIO allows it only at creation.
func WithObjectLock() BucketOption { return func(o *bucketOptions) { o.objectLock = true } }

// WithDefaultRetention creates the bucket with Object Lock and a default
// retention of mode for days, so that every new object version is locked
// without asking.
func WithDefaultRetention(mode types.ObjectLockRetentionMode, days int32) BucketOption {
	return func(o *bucketOptions) {
		o.objectLock = true
		o.retention = &types.DefaultRetention{Mode: mode, Days: aws.Int32(days)}
	}
}

// NewBucket creates a bucket with a plain client and returns its name. An
// empty name picks a unique one.
func (s *MinIOServer) NewBucket(t testing.TB, name string, opts ...BucketOption) string {
	t.Helper()
	var o bucketOptions
	for _, opt := range opts {
		opt(&o)
	}
	if name == "" {
		name = fmt.Sprintf("test-bucket-%d", bucketSeq.Add(1))
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if o.objectLock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := s.Client().CreateBucket(t.Context(), in); err != nil {
		t.Fatalf("testserver: create bucket %s: %v", name, err)
	}
	if o.retention != nil {
		if _, err := s.Client().PutObjectLockConfiguration(t.Context(), &s3.PutObjectLockConfigurationInput{
			Bucket: aws.String(name),
			ObjectLockConfiguration: &types.ObjectLockConfiguration{
				ObjectLockEnabled: types.ObjectLockEnabledEnabled,
				Rule:              &types.ObjectLockRule{DefaultRetention: o.retention},
			},
		}); err != nil {
			t.Fatalf("testserver: put object lock configuration of %s: %v", name, err)
		}
	}
	return name
}

// Env returns the environment a child process (a worker binary) needs to
// reach the server through the SDK's standard configuration chain:
// AWS_ENDPOINT_URL_S3, AWS_REGION, keys, ARCHIVER_S3_FORCE_PATH_STYLE=true
// and AWS_CA_BUNDLE (the test CA over TLS, empty, meaning unset, over HTTP).
func (s *MinIOServer) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_REGION=" + s.Region,
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_CA_BUNDLE=" + s.CAFile,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PROFILE=",
		"ARCHIVER_S3_FORCE_PATH_STYLE=true",
	}
}
