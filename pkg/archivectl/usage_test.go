package archivectl_test

import (
	"strings"
	"testing"

	"github.com/artifact-archiver/artifact-archiver/pkg/archivectl"
)

func TestUsage(t *testing.T) {
	t.Parallel()
	r := run(t, env{}).want(t, archivectl.ExitUsage)
	mustContain(t, "no arguments", r.stderr, "Commands:")
	r = run(t, env{}, "-h").want(t, archivectl.ExitOK)
	mustContain(t, "archivectl -h", r.stdout, "ls", "find", "get", "restore", "verify", "backfill", "redeliver", "dlq", "catalog", "Exit codes",
		"ARCHIVER_DESTINATION", "ARCHIVER_S3_FORCE_PATH_STYLE", "NATS_URL", "NATS_CREDS", "ARCHIVER_DLQ_STREAM", "GITHUB_API_URL", "GITHUB_TOKEN",
		"GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY_FILE", "NO_COLOR", "TERM", "ARCHIVER_LOG_LEVEL (default warn)")
	for _, e := range archivectl.Env() {
		mustContain(t, "archivectl -h", r.stdout, e.Names()...)
	}
	for _, tc := range []struct {
		args []string
		env  []string
	}{
		{[]string{"ls", "-h"}, []string{"ARCHIVER_DESTINATION", "-since", "-json", "-workflow", "-from-manifests"}},
		{[]string{"find", "-h"}, []string{"ARCHIVER_DESTINATION", "-sha S", "-pr N", "-until DATE", "-branch"}},
		{[]string{"catalog", "-h"}, []string{"ARCHIVER_DESTINATION", "catalog rebuild", "catalog compact"}},
		{[]string{"catalog", "rebuild", "-h"}, []string{"ARCHIVER_DESTINATION", "ARCHIVER_S3_STORAGE_CLASS"}},
		{[]string{"get", "--help"}, []string{"ARCHIVER_DESTINATION", "-o FILE"}},
		{[]string{"verify", "-h"}, []string{"ARCHIVER_DESTINATION", "-deep", "Object Lock"}},
		{[]string{"restore", "-h"}, []string{"ARCHIVER_DESTINATION", "-days N", "-tier Bulk", "-attempt N", "-wait", "-interval D", "-timeout D", "DEEP_ARCHIVE"}},
		{[]string{"backfill", "-h"}, []string{"GITHUB_APP_PRIVATE_KEY", "NATS_URL", "ARCHIVER_STREAM", "ARCHIVER_DESTINATION", "-installation", "-dry-run"}},
		{[]string{"redeliver", "-h"}, []string{"GITHUB_APP_ID", "-since", "-dry-run"}},
		{[]string{"dlq", "-h"}, []string{"NATS_URL", "ARCHIVER_DLQ_STREAM", "dlq replay", "dlq purge"}},
		{[]string{"dlq", "replay", "-h"}, []string{"NATS_URL", "-all"}},
		{[]string{"help", "verify"}, []string{"-deep"}},
	} {
		r := run(t, env{}, tc.args...).want(t, archivectl.ExitOK)
		mustContain(t, strings.Join(tc.args, " "), r.stdout, append([]string{"Usage: archivectl", "Environment:"}, tc.env...)...)
	}
	run(t, env{}, "frobnicate").want(t, archivectl.ExitUsage)
	run(t, env{}, "dlq").want(t, archivectl.ExitUsage)
	r = run(t, env{}, "verify", "--bogus").want(t, archivectl.ExitUsage)
	mustContain(t, "bad flag", r.stderr, "-bogus", "archivectl verify -h")
	r = run(t, env{}, "ls").want(t, archivectl.ExitUsage)
	mustContain(t, "ls without a destination", r.stderr, "ARCHIVER_DESTINATION")
	run(t, env{"ARCHIVER_DESTINATION": "ftp://x"}, "ls").want(t, archivectl.ExitFailure)
	run(t, env{"ARCHIVER_DESTINATION": "file:///tmp", "ARCHIVER_S3_FORCE_PATH_STYLE": "maybe"}, "ls").want(t, archivectl.ExitUsage)
	run(t, env{"NATS_URL": "nats://127.0.0.1:1"}, "dlq", "ls").want(t, archivectl.ExitFailure)
	run(t, env{"ARCHIVER_MAX_DELIVER": "x"}, "dlq", "ls").want(t, archivectl.ExitUsage)
	// A bad log level is a usage error of every command, but help still works.
	r = run(t, env{"ARCHIVER_LOG_LEVEL": "loud"}, "ls").want(t, archivectl.ExitUsage)
	mustContain(t, "bad log level", r.stderr, `ARCHIVER_LOG_LEVEL="loud"`)
	run(t, env{"ARCHIVER_LOG_LEVEL": "loud"}, "ls", "-h").want(t, archivectl.ExitOK)
	run(t, env{"ARCHIVER_LOG_LEVEL": "loud"}, "-h").want(t, archivectl.ExitOK)
	// GitHub settings: a value that does not parse is a usage error, a key
	// file that cannot be read a failure.
	r = run(t, env{"GITHUB_APP_ID": "x", "GITHUB_APP_PRIVATE_KEY": "k"}, "redeliver").want(t, archivectl.ExitUsage)
	mustContain(t, "bad app id", r.stderr, "GITHUB_APP_ID")
	r = run(t, env{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent/app.pem"}, "redeliver").want(t, archivectl.ExitFailure)
	mustContain(t, "missing key file", r.stderr, "GITHUB_APP_PRIVATE_KEY_FILE", "/nonexistent/app.pem")
}
