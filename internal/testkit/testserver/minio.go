package testserver

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
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
// [S3Access.HTTPClient], [S3Access.AWSConfig] or [MinIOServer.CAPEM].
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
	// S3Access is over https:// with WithTLS, its CAFile then holding
	// CAPEM; its Region is always MinIORegion.
	S3Access
	DataDir string
	// CAPEM is the certificate to trust in TLS mode, nil over HTTP.
	CAPEM []byte

	port        int
	consolePort int
	certsDir    string
	opts        minioOptions
	proc        restartable
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
	root := t.TempDir()
	s := &MinIOServer{
		DataDir: filepath.Join(root, "data"),
		opts:    o,
		proc: restartable{
			t:      t,
			name:   "minio",
			bin:    Binary(t, "minio", "ARCHIVER_MINIO_BIN", MinIOModule),
			logDir: root,
		},
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
	var caFile string
	if o.tls {
		scheme = "https"
		certPEM, keyPEM, err := selfSignedCert()
		if err != nil {
			t.Fatal(err)
		}
		s.certsDir = filepath.Join(root, "certs")
		caFile = filepath.Join(s.certsDir, "public.crt")
		if err := os.Mkdir(s.certsDir, 0o700); err != nil {
			t.Fatalf("testserver: %v", err)
		}
		if err := os.WriteFile(caFile, certPEM, 0o644); err != nil {
			t.Fatalf("testserver: %v", err)
		}
		if err := os.WriteFile(filepath.Join(s.certsDir, "private.key"), keyPEM, 0o600); err != nil {
			t.Fatalf("testserver: %v", err)
		}
		s.CAPEM = certPEM
		pool = x509.NewCertPool()
		pool.AppendCertsFromPEM(certPEM)
	}
	s.S3Access = newS3Access(fmt.Sprintf("%s://%s", scheme, hostPort(s.port)), "archiver-test", rand.Text(), MinIORegion, pool)
	s.CAFile = caFile
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Start starts the server (again) on the same port and data directory and
// waits until it serves requests (see minioReady). It does nothing if the
// server is running. Call it from the test's goroutine: it fails the test.
func (s *MinIOServer) Start() {
	s.proc.t.Helper()
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
	probe := &http.Client{Transport: s.client.GetTransport(), Timeout: 2 * time.Second}
	s.proc.start(s.Endpoint, args, env, minioReady(probe, s.Endpoint))
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
func (s *MinIOServer) Stop() { s.proc.kill() }
