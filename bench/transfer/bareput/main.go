// Command bareput is the transfer benchmark's one-stream limit: it GETs a
// URL and streams the body into one PutObject with aws-sdk-go-v2, hashing
// SHA-256 on the way, as the worker's store does for a single PUT (no SDK
// retries, request checksums only when required, unsigned payload). It
// prints the body's hex SHA-256 and length on stdout.
//
// The S3 endpoint, region and keys come from the SDK's environment
// (AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, ...).
//
//	bareput -url http://127.0.0.1:PORT/blob/... -bucket bench -key bare/1.zip
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareput:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bareput", flag.ContinueOnError)
	src := fs.String("url", "", "URL to GET")
	bucket := fs.String("bucket", "", "destination bucket")
	key := fs.String("key", "", "destination key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *src == "" || *bucket == "" || *key == "" {
		return errors.New("-url, -bucket and -key are required")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load aws config: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *src, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 {
		return fmt.Errorf("get: %s, length %d", resp.Status, resp.ContentLength)
	}
	h := sha256.New()
	body := io.TeeReader(resp.Body, h) // not an io.Seeker: the SDK streams it once
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        bucket,
		Key:           key,
		Body:          body,
		ContentLength: aws.Int64(resp.ContentLength),
		ContentType:   aws.String("application/zip"),
	}, func(o *s3.Options) {
		o.RetryMaxAttempts = 1
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}); err != nil {
		return fmt.Errorf("put object %s: %w", *key, err)
	}
	fmt.Fprintf(stdout, "%x %d\n", h.Sum(nil), resp.ContentLength)
	return nil
}
