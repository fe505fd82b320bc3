package s3store_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

func TestParseDestination(t *testing.T) {
	for _, tc := range []struct {
		in             string
		bucket, prefix string
		ok             bool
	}{
		{"s3://bucket", "bucket", "", true},
		{"s3://bucket/", "bucket", "", true},
		{"s3://bucket/archive", "bucket", "archive", true},
		{"s3://bucket/archive/v1/", "bucket", "archive/v1", true},
		{"s3://bucket//archive", "", "", false},
		{"s3://bucket/a/../b", "", "", false},
		{"s3:///archive", "", "", false},
		{"s3://user@bucket/x", "", "", false},
		{"s3://bucket/x?versionId=1", "", "", false},
		{"https://bucket/x", "", "", false},
		{"bucket/x", "", "", false},
	} {
		bucket, prefix, err := s3store.ParseDestination(tc.in)
		if (err == nil) != tc.ok || bucket != tc.bucket || prefix != tc.prefix {
			t.Errorf("ParseDestination(%q) = %q, %q, %v; want %q, %q, ok=%v", tc.in, bucket, prefix, err, tc.bucket, tc.prefix, tc.ok)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	valid := s3store.Config{Bucket: "b", AWS: aws.Config{Region: "us-east-1"}}
	for _, tc := range []struct {
		name string
		edit func(*s3store.Config)
		ok   bool
	}{
		{"valid", func(*s3store.Config) {}, true},
		{"no bucket", func(c *s3store.Config) { c.Bucket = "" }, false},
		{"no region", func(c *s3store.Config) { c.AWS.Region = "" }, false},
		{"bad prefix", func(c *s3store.Config) { c.Prefix = "a//b" }, false},
		{"slashes around prefix", func(c *s3store.Config) { c.Prefix = "/a/b/" }, true},
		{"sse", func(c *s3store.Config) { c.SSE = "AES256" }, true},
		{"bad sse", func(c *s3store.Config) { c.SSE = "rot13" }, false},
		{"kms key without kms", func(c *s3store.Config) { c.SSEKMSKeyID = "k" }, false},
		{"kms key", func(c *s3store.Config) { c.SSE, c.SSEKMSKeyID = "aws:kms", "k" }, true},
		{"storage classes", func(c *s3store.Config) { c.StorageClass, c.ArtifactStorageClass = "STANDARD_IA", "DEEP_ARCHIVE" }, true},
		{"vendor storage class", func(c *s3store.Config) { c.ArtifactStorageClass = "COLD_HDD_2" }, true},
		{"lower-case storage class", func(c *s3store.Config) { c.StorageClass = "standard" }, false},
		{"bad artifact storage class", func(c *s3store.Config) { c.ArtifactStorageClass = "GLACIER IR" }, false},
		{"records in glacier", func(c *s3store.Config) { c.StorageClass = "GLACIER" }, false},
		{"records in deep archive", func(c *s3store.Config) { c.StorageClass = "DEEP_ARCHIVE" }, false},
		{"governance", func(c *s3store.Config) { c.ObjectLockMode, c.ObjectLockDays = "GOVERNANCE", 30 }, true},
		{"compliance", func(c *s3store.Config) { c.ObjectLockMode, c.ObjectLockDays = "COMPLIANCE", 2555 }, true},
		{"mode without days", func(c *s3store.Config) { c.ObjectLockMode = "GOVERNANCE" }, false},
		{"mode with negative days", func(c *s3store.Config) { c.ObjectLockMode, c.ObjectLockDays = "COMPLIANCE", -1 }, false},
		{"days over 100 years", func(c *s3store.Config) { c.ObjectLockMode, c.ObjectLockDays = "COMPLIANCE", 36501 }, false},
		{"days without mode", func(c *s3store.Config) { c.ObjectLockDays = 30 }, false},
		{"lower-case mode", func(c *s3store.Config) { c.ObjectLockMode, c.ObjectLockDays = "governance", 1 }, false},
		{"unknown mode", func(c *s3store.Config) { c.ObjectLockMode, c.ObjectLockDays = "FOREVER", 1 }, false},
		{"legal hold alone", func(c *s3store.Config) { c.ObjectLockLegalHold = true }, true},
		{"legal hold and retention", func(c *s3store.Config) {
			c.ObjectLockMode, c.ObjectLockDays, c.ObjectLockLegalHold = "GOVERNANCE", 1, true
		}, true},
	} {
		c := valid
		tc.edit(&c)
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestForcePathStyleFromEnv(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
		ok   bool
	}{{"", false, true}, {"true", true, true}, {"1", true, true}, {"false", false, true}, {"yes", false, false}} {
		got, err := s3store.ForcePathStyleFromEnv(func(k string) string {
			if k == s3store.EnvForcePathStyle {
				return tc.v
			}
			return ""
		})
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("%s=%q: %v, %v; want %v, ok=%v", s3store.EnvForcePathStyle, tc.v, got, err, tc.want, tc.ok)
		}
	}
}

// The SDK keeps 10 idle connections per host by default; the store's
// client keeps enough for a catalogue query's 32 reads in flight.
func TestLoadAWSConfigKeepsIdleConnections(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	cfg, err := s3store.LoadAWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTP client is %T, want *http.BuildableClient", cfg.HTTPClient)
	}
	if got := bc.GetTransport().MaxIdleConnsPerHost; got != s3store.MaxIdleConnsPerHost {
		t.Errorf("MaxIdleConnsPerHost = %d, want %d", got, s3store.MaxIdleConnsPerHost)
	}
}
