package s3store

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
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

	// StorageClass of new objects. Default: the bucket's (STANDARD). MinIO
	// accepts only STANDARD and REDUCED_REDUNDANCY.
	StorageClass types.StorageClass
	// SSE is the server-side encryption of new objects: "" (default: none
	// requested, the bucket default applies), "AES256" or "aws:kms".
	SSE types.ServerSideEncryption
	// SSEKMSKeyID is the KMS key for SSE "aws:kms". Default: the account's
	// AWS managed key.
	SSEKMSKeyID string

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
	return nil
}

// LoadAWSConfig loads the SDK's standard configuration chain
// (config.LoadDefaultConfig) and requires a region.
func LoadAWSConfig(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
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
