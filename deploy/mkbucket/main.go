// Command mkbucket creates the archive bucket named by ARCHIVER_DESTINATION
// if it does not exist yet, then exits. It is the one-shot "bucket init"
// container of the local stack (deploy/compose.yaml): MinIO starts empty,
// the worker refuses to start without its bucket (HeadBucket at start-up),
// and the usual tool for this, MinIO's mc, has no image here. In production
// the bucket is created by infrastructure code with versioning, lifecycle
// and Object Lock settings (deploy/s3/), never by this tool.
//
// It reads the worker's variables: ARCHIVER_DESTINATION (s3://bucket/prefix),
// ARCHIVER_S3_FORCE_PATH_STYLE and the AWS SDK chain (AWS_REGION,
// AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). It retries
// until MKBUCKET_TIMEOUT (default 60s) while the S3 endpoint is not up.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/pkg/s3store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "mkbucket:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkbucket", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: mkbucket [-h]

Creates the bucket of ARCHIVER_DESTINATION if it is missing (local stack only).

Environment:
  ARCHIVER_DESTINATION          s3://bucket/prefix (required)
  ARCHIVER_S3_FORCE_PATH_STYLE  path-style URLs, for MinIO (default false)
  AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
                                the standard AWS SDK chain
  MKBUCKET_TIMEOUT              keep retrying this long while S3 is down (default 60s)
`)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	bucket, _, err := s3store.ParseDestination(getenv("ARCHIVER_DESTINATION"))
	if err != nil {
		return fmt.Errorf("ARCHIVER_DESTINATION: %w", err)
	}
	pathStyle, err := s3store.ForcePathStyleFromEnv(getenv)
	if err != nil {
		return err
	}
	timeout, err := time.ParseDuration(cmp.Or(getenv("MKBUCKET_TIMEOUT"), "60s"))
	if err != nil {
		return fmt.Errorf("MKBUCKET_TIMEOUT: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := s3store.LoadAWSConfig(ctx)
	if err != nil {
		return err
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle })
	for {
		created, err := ensureBucket(ctx, client, bucket)
		if err == nil {
			if created {
				fmt.Fprintf(stdout, "mkbucket: created bucket %s\n", bucket)
			} else {
				fmt.Fprintf(stdout, "mkbucket: bucket %s exists\n", bucket)
			}
			return nil
		}
		fmt.Fprintf(stderr, "mkbucket: %v; retrying\n", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("create bucket %s: %w", bucket, err)
		case <-time.After(time.Second):
		}
	}
}

// ensureBucket creates bucket unless HeadBucket finds it. It reports
// whether it created it.
func ensureBucket(ctx context.Context, client *s3.Client, bucket string) (bool, error) {
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		return false, nil
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if region := client.Options().Region; region != "us-east-1" {
		// Every region but us-east-1 wants its name as the constraint.
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	_, err := client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	switch {
	case errors.As(err, &owned):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return true, nil
}
