package s3store

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// EnvForcePathStyle is the environment variable for [Config.ForcePathStyle]
// (the Go SDK has none of its own).
const EnvForcePathStyle = "ARCHIVER_S3_FORCE_PATH_STYLE"

// Config configures a [Store].
type Config struct {
	// Bucket is required.
	Bucket string
	// Prefix is prepended, with a "/", to every key (the "prefix" of
	// s3://bucket/prefix). Leading and trailing slashes are dropped. Default:
	// none, keys are at the bucket root.
	Prefix string

	// Client, if set, is used as is; AWS and ForcePathStyle are ignored.
	Client *s3.Client
	// AWS is the SDK configuration to build the client from when Client is
	// nil: use [LoadAWSConfig] (AWS_REGION, AWS_ENDPOINT_URL_S3, the
	// credential chain, AWS_CA_BUNDLE, ...). Its Region is required.
	AWS aws.Config
	// ForcePathStyle addresses the bucket in the path
	// (https://host/bucket/key), as MinIO and most non-AWS servers need.
	// Default false (virtual-hosted style). Environment:
	// ARCHIVER_S3_FORCE_PATH_STYLE, see [ForcePathStyleFromEnv].
	ForcePathStyle bool

	// StorageClass of new records (manifests, SHA256SUMS, catalogue) and
	// transient objects (leases), and of artifacts when ArtifactStorageClass
	// is empty. Default "": the bucket's default (STANDARD on AWS). It must
	// be readable at once: GLACIER and DEEP_ARCHIVE are refused. MinIO
	// accepts only STANDARD and REDUCED_REDUNDANCY.
	StorageClass types.StorageClass
	// ArtifactStorageClass of new artifacts (archive.KindArtifact), for
	// example STANDARD_IA or GLACIER_IR. Default: StorageClass.
	ArtifactStorageClass types.StorageClass
	// SSE is the server-side encryption of new objects: "" (default: none
	// requested, the bucket default applies), "AES256" or "aws:kms".
	SSE types.ServerSideEncryption
	// SSEKMSKeyID is the KMS key for SSE "aws:kms". Default: the account's
	// AWS managed key.
	SSEKMSKeyID string

	// ObjectLockMode puts every new record and artifact under Object Lock
	// retention: GOVERNANCE or COMPLIANCE, for ObjectLockDays from the
	// write. Transient objects (transfer leases) never get retention.
	// Default "": none requested (a bucket default retention still
	// applies). The bucket must have Object Lock enabled.
	ObjectLockMode types.ObjectLockMode
	// ObjectLockDays is the retention period with ObjectLockMode: required
	// (1 to 36500) with a mode, and must be 0 without one.
	ObjectLockDays int
	// ObjectLockLegalHold puts a legal hold on every new record and
	// artifact (never on transient objects). Default false.
	ObjectLockLegalHold bool

	// Logger receives the few events worth logging (stale uploads aborted).
	// Default: discard.
	Logger *slog.Logger
}

// Validate names the first field that is wrong.
func (c Config) Validate() error {
	if c.Bucket == "" {
		return fmt.Errorf("s3store: Bucket is required")
	}
	if c.Client == nil && c.AWS.Region == "" {
		return fmt.Errorf("s3store: AWS.Region is required when Client is nil (set AWS_REGION)")
	}
	if err := validatePrefix(strings.Trim(c.Prefix, "/")); err != nil {
		return fmt.Errorf("s3store: Prefix %q: %w", c.Prefix, err)
	}
	switch c.SSE {
	case "", types.ServerSideEncryptionAes256, types.ServerSideEncryptionAwsKms, types.ServerSideEncryptionAwsKmsDsse:
	default:
		return fmt.Errorf("s3store: SSE %q: want \"\", AES256, aws:kms or aws:kms:dsse", c.SSE)
	}
	if c.SSEKMSKeyID != "" && c.SSE != types.ServerSideEncryptionAwsKms && c.SSE != types.ServerSideEncryptionAwsKmsDsse {
		return fmt.Errorf("s3store: SSEKMSKeyID needs SSE aws:kms")
	}
	if err := validateStorageClass(c.StorageClass); err != nil {
		return fmt.Errorf("s3store: StorageClass %q: %w", c.StorageClass, err)
	}
	switch c.StorageClass {
	case types.StorageClassGlacier, types.StorageClassDeepArchive:
		return fmt.Errorf("s3store: StorageClass %q: manifests and leases must be readable at once; use it for ArtifactStorageClass only", c.StorageClass)
	}
	if err := validateStorageClass(c.ArtifactStorageClass); err != nil {
		return fmt.Errorf("s3store: ArtifactStorageClass %q: %w", c.ArtifactStorageClass, err)
	}
	switch c.ObjectLockMode {
	case "":
		if c.ObjectLockDays != 0 {
			return fmt.Errorf("s3store: ObjectLockDays %d needs ObjectLockMode GOVERNANCE or COMPLIANCE", c.ObjectLockDays)
		}
	case types.ObjectLockModeGovernance, types.ObjectLockModeCompliance:
		if c.ObjectLockDays < 1 || c.ObjectLockDays > maxObjectLockDays {
			return fmt.Errorf("s3store: ObjectLockDays %d with ObjectLockMode %s: want 1 to %d", c.ObjectLockDays, c.ObjectLockMode, maxObjectLockDays)
		}
	default:
		return fmt.Errorf("s3store: ObjectLockMode %q: want \"\", GOVERNANCE or COMPLIANCE", c.ObjectLockMode)
	}
	return nil
}

// maxObjectLockDays bounds ObjectLockDays at 100 years, to catch typos: a
// COMPLIANCE retention cannot be shortened.
const maxObjectLockDays = 36500

// validateStorageClass accepts "" and upper-case names (S3's, or a
// vendor's own such as Ceph's placement classes).
func validateStorageClass(c types.StorageClass) error {
	for _, r := range c {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return fmt.Errorf("want an S3 storage class such as STANDARD, STANDARD_IA or GLACIER_IR")
		}
	}
	return nil
}

// MaxIdleConnsPerHost is how many idle connections to the S3 endpoint the
// client keeps. The SDK's default (10) is below the reads in flight of a
// catalogue query (32) or of several transfers, so connections would be
// closed and dialled again for every burst.
const MaxIdleConnsPerHost = 64

// LoadAWSConfig loads the SDK's standard configuration chain
// (config.LoadDefaultConfig) and requires a region. Its HTTP client keeps
// MaxIdleConnsPerHost idle connections; an optFns WithHTTPClient
// replaces it.
func LoadAWSConfig(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	client := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	})
	optFns = append([]func(*config.LoadOptions) error{config.WithHTTPClient(client)}, optFns...)
	cfg, err := config.LoadDefaultConfig(ctx, optFns...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("s3store: load aws config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("s3store: load aws config: no region (set AWS_REGION)")
	}
	return cfg, nil
}

// ForcePathStyleEnv adds ARCHIVER_S3_FORCE_PATH_STYLE to e, bound to p
// (default false): the one definition of the variable.
func ForcePathStyleEnv(e *service.Env, p *bool) {
	e.Bool(p, EnvForcePathStyle, false, "path-style URLs (`https://host/bucket/key`), for MinIO and other S3-compatibles")
}

// ForcePathStyleFromEnv reads ARCHIVER_S3_FORCE_PATH_STYLE through getenv
// (see [ForcePathStyleEnv]): unset means false, otherwise a
// strconv.ParseBool value.
func ForcePathStyleFromEnv(getenv func(string) string) (bool, error) {
	var v bool
	var e service.Env
	ForcePathStyleEnv(&e, &v)
	if err := e.Parse(getenv); err != nil {
		return false, fmt.Errorf("s3store: %w", err)
	}
	return v, nil
}

// ParseDestination splits "s3://bucket/prefix" into bucket and prefix
// (without surrounding slashes; "" for the bucket root).
func ParseDestination(dest string) (bucket, prefix string, err error) {
	u, err := url.Parse(dest)
	if err != nil {
		return "", "", fmt.Errorf("s3store: parse destination %q: %w", dest, err)
	}
	if u.Scheme != "s3" {
		return "", "", fmt.Errorf("s3store: parse destination %q: want s3://bucket/prefix", dest)
	}
	if u.Host == "" || u.User != nil || u.Port() != "" {
		return "", "", fmt.Errorf("s3store: parse destination %q: want s3://bucket/prefix", dest)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("s3store: parse destination %q: no query or fragment allowed", dest)
	}
	prefix = strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/")
	if err := validatePrefix(prefix); err != nil {
		return "", "", fmt.Errorf("s3store: parse destination %q: %w", dest, err)
	}
	return u.Host, prefix, nil
}

func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return validateKey(prefix)
}
