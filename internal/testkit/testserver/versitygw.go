package testserver

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// VersityGWModule is the pinned versitygw built by [Binary] for [VersityGW].
const VersityGWModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

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

	port int
	opts versityGWOptions
	proc restartable
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
		S3Access: newS3Access("http://"+hostPort(port), "archiver-test", rand.Text(), MinIORegion, nil),
		DataDir:  dataDir,
		port:     port,
		opts:     o,
		proc: restartable{
			t:      t,
			name:   "versitygw",
			bin:    Binary(t, "versitygw", "ARCHIVER_VERSITYGW_BIN", VersityGWModule),
			logDir: root,
		},
	}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Start starts the server (again) on the same port and directory and waits
// until it answers a signed ListBuckets. It does nothing if the server is
// running. Call it from the test's goroutine: it fails the test.
func (s *VersityGWServer) Start() {
	s.proc.t.Helper()
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
	s.proc.start(s.Endpoint, args, env, s.s3Ready())
}

// Stop kills the server, as a crash would, and waits for it to exit. The
// directory and port are kept for [VersityGWServer.Start]. Stopping a
// stopped server does nothing.
func (s *VersityGWServer) Stop() { s.proc.kill() }
