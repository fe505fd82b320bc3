// Package destination opens the archive [archive.Store] named by
// ARCHIVER_DESTINATION: s3://bucket/prefix (production) or file:///path
// (a local directory with the same layout, the demo default).
package destination

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
	"github.com/artifact-archiver/artifact-archiver/pkg/filestore"
	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// Env adds the variables of the archive's location to e:
// ARCHIVER_DESTINATION, bound to dest with the default def (required if def
// is ""), ARCHIVER_S3_FORCE_PATH_STYLE, bound to forcePathStyle, and the
// AWS SDK's chain, which Open reads for an s3:// destination.
func Env(e *service.Env, dest *string, def string, forcePathStyle *bool) {
	v := e.String(dest, "ARCHIVER_DESTINATION", def, "where the archive lives: `s3://bucket/prefix` or `file:///path`")
	if def == "" {
		v.Required()
	}
	s3store.ForcePathStyleEnv(e, forcePathStyle)
	e.Doc("AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...", "SDK chain",
		"the standard AWS SDK configuration (environment keys, a profile, IRSA or an instance role), for an `s3://` destination")
}

// S3Writes are the attributes of the objects written to an s3://
// destination (they do not apply to file://): storage classes, server-side
// encryption and Object Lock. The zero value asks for nothing: the
// bucket's defaults apply. See [s3store.Config] for each field.
type S3Writes struct {
	StorageClass         string // ARCHIVER_S3_STORAGE_CLASS
	ArtifactStorageClass string // ARCHIVER_S3_ARTIFACT_STORAGE_CLASS
	SSE                  string // ARCHIVER_S3_SSE
	SSEKMSKeyID          string // ARCHIVER_S3_SSE_KMS_KEY_ID
	ObjectLockMode       string // ARCHIVER_OBJECT_LOCK_MODE
	ObjectLockDays       int    // ARCHIVER_OBJECT_LOCK_DAYS
	ObjectLockLegalHold  bool   // ARCHIVER_OBJECT_LOCK_LEGAL_HOLD
}

// S3WritesEnv adds the variables of [S3Writes] to e, bound to w.
func S3WritesEnv(e *service.Env, w *S3Writes) {
	e.String(&w.StorageClass, "ARCHIVER_S3_STORAGE_CLASS", "",
		"storage class of manifests, checksum lists and leases (and of artifacts unless set below), e.g. `STANDARD_IA`; not a Glacier class, they are read back").
		DefaultText("the bucket's (`STANDARD`)")
	e.String(&w.ArtifactStorageClass, "ARCHIVER_S3_ARTIFACT_STORAGE_CLASS", "",
		"storage class of artifacts, e.g. `STANDARD_IA`, `GLACIER_IR`, `DEEP_ARCHIVE`").
		DefaultText("`ARCHIVER_S3_STORAGE_CLASS`")
	e.Choice(&w.SSE, "ARCHIVER_S3_SSE", "", []string{"aes256", "aws:kms", "aws:kms:dsse"},
		"server-side encryption to request: `AES256` or `aws:kms`").
		DefaultText("the bucket's")
	e.String(&w.SSEKMSKeyID, "ARCHIVER_S3_SSE_KMS_KEY_ID", "", "KMS key id or ARN, with `ARCHIVER_S3_SSE=aws:kms`").
		DefaultText("the AWS managed key")
	e.Choice(&w.ObjectLockMode, "ARCHIVER_OBJECT_LOCK_MODE", "", []string{"governance", "compliance"},
		"Object Lock retention of every archived artifact and record (manifests, checksum lists), never of leases: `GOVERNANCE` or `COMPLIANCE`; the bucket needs Object Lock").
		DefaultText("none")
	e.Int(&w.ObjectLockDays, "ARCHIVER_OBJECT_LOCK_DAYS", 0, "retention in days from the write, required with `ARCHIVER_OBJECT_LOCK_MODE`")
	e.Bool(&w.ObjectLockLegalHold, "ARCHIVER_OBJECT_LOCK_LEGAL_HOLD", false,
		"a legal hold on every archived artifact and record (until removed by someone with `s3:PutObjectLegalHold`)")
}

// apply sets the write attributes of cfg.
func (w S3Writes) apply(cfg *s3store.Config) {
	cfg.StorageClass = types.StorageClass(w.StorageClass)
	cfg.ArtifactStorageClass = types.StorageClass(w.ArtifactStorageClass)
	cfg.SSE = types.ServerSideEncryption(w.SSE)
	if strings.EqualFold(w.SSE, string(types.ServerSideEncryptionAes256)) {
		cfg.SSE = types.ServerSideEncryptionAes256
	}
	cfg.SSEKMSKeyID = w.SSEKMSKeyID
	cfg.ObjectLockMode = types.ObjectLockMode(strings.ToUpper(w.ObjectLockMode))
	cfg.ObjectLockDays = w.ObjectLockDays
	cfg.ObjectLockLegalHold = w.ObjectLockLegalHold
}

// Validate checks the combination (a mode needs days, a KMS key needs
// aws:kms, ...), naming the variables.
func (w S3Writes) Validate() error {
	cfg := s3store.Config{Bucket: "validate", AWS: aws.Config{Region: "validate"}}
	w.apply(&cfg)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("ARCHIVER_S3_* / ARCHIVER_OBJECT_LOCK_*: %w", err)
	}
	return nil
}

// Options tune how a destination is opened.
type Options struct {
	// ForcePathStyle: path-style S3 addressing (ARCHIVER_S3_FORCE_PATH_STYLE).
	ForcePathStyle bool
	// S3 are the attributes of new objects in an s3:// destination.
	S3 S3Writes
	// AWSOptions are passed to config.LoadDefaultConfig.
	AWSOptions []func(*config.LoadOptions) error
	Logger     *slog.Logger
}

// Open returns the store for dest. S3 credentials, region and endpoint come
// from the standard AWS SDK chain; o.S3 sets how objects are written there
// (a file:// destination refuses those settings). "file://./relative/dir" is accepted as a
// convenience for the demo.
func Open(ctx context.Context, dest string, o Options) (archive.Store, error) {
	switch {
	case strings.HasPrefix(dest, "s3://"):
		bucket, prefix, err := s3store.ParseDestination(dest)
		if err != nil {
			return nil, err
		}
		log := o.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		// The SDK logs to os.Stderr by default (a line for every object
		// read without a checksum): route it through slog instead.
		opts := append([]func(*config.LoadOptions) error{config.WithLogger(sdkLogger{log})}, o.AWSOptions...)
		awsCfg, err := s3store.LoadAWSConfig(ctx, opts...)
		if err != nil {
			return nil, err
		}
		cfg := s3store.Config{Bucket: bucket, Prefix: prefix, AWS: awsCfg, ForcePathStyle: o.ForcePathStyle, Logger: o.Logger}
		o.S3.apply(&cfg)
		return s3store.New(ctx, cfg)
	case strings.HasPrefix(dest, "file://"):
		if o.S3 != (S3Writes{}) {
			// Retention asked for and silently not given would be worse.
			return nil, fmt.Errorf("destination %q: storage class, encryption and Object Lock settings apply to s3:// only", dest)
		}
		dir, err := fileDir(dest)
		if err != nil {
			return nil, err
		}
		return filestore.New(filestore.Config{Dir: dir, Logger: o.Logger})
	default:
		return nil, fmt.Errorf("destination %q: want s3://bucket/prefix or file:///path", dest)
	}
}

// sdkLogger hands the AWS SDK's log lines to slog: warnings as warnings,
// the rest at debug.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(class logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if class == logging.Warn {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, "aws sdk: "+fmt.Sprintf(format, v...))
}

func fileDir(dest string) (string, error) {
	rest := strings.TrimPrefix(dest, "file://")
	if strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") || rest == "." {
		abs, err := filepath.Abs(rest)
		if err != nil {
			return "", fmt.Errorf("destination %q: %w", dest, err)
		}
		return abs, nil
	}
	return filestore.ParseDestination(dest)
}
