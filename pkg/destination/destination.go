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

	"github.com/aws/aws-sdk-go-v2/config"
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

// Options tune how a destination is opened.
type Options struct {
	// ForcePathStyle: path-style S3 addressing (ARCHIVER_S3_FORCE_PATH_STYLE).
	ForcePathStyle bool
	// AWSOptions are passed to config.LoadDefaultConfig.
	AWSOptions []func(*config.LoadOptions) error
	Logger     *slog.Logger
}

// Open returns the store for dest. S3 credentials, region and endpoint come
// from the standard AWS SDK chain. "file://./relative/dir" is accepted as a
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
		return s3store.New(ctx, s3store.Config{Bucket: bucket, Prefix: prefix, AWS: awsCfg, ForcePathStyle: o.ForcePathStyle, Logger: o.Logger})
	case strings.HasPrefix(dest, "file://"):
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
