package testserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Access is how a client reaches a test S3 server: endpoint, root
// credentials, region, and an HTTP client of its own (no proxy, and only
// the test CA, never the environment's AWS_CA_BUNDLE). Servers embed it.
type S3Access struct {
	Endpoint  string // http://127.0.0.1:PORT, or https:// over TLS
	AccessKey string
	SecretKey string
	Region    string
	// CAFile holds the certificate to trust over TLS (AWS_CA_BUNDLE of a
	// child process), "" over HTTP.
	CAFile string

	client *awshttp.BuildableClient
}

// newS3Access returns the access to a server at endpoint. A nil roots
// means plain HTTP; otherwise the client trusts only roots (the caller
// sets CAFile to the file holding them).
func newS3Access(endpoint, accessKey, secretKey, region string, roots *x509.CertPool) S3Access {
	return S3Access{
		Endpoint:  endpoint,
		AccessKey: accessKey,
		SecretKey: secretKey,
		Region:    region,
		client: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.Proxy = nil
			if roots != nil {
				if tr.TLSClientConfig == nil {
					tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
				}
				tr.TLSClientConfig.RootCAs = roots
			}
		}),
	}
}

// HTTPClient returns an HTTP client that trusts the server's certificate
// and uses no proxy. It is the client of [S3Access.AWSConfig].
func (a *S3Access) HTTPClient() *http.Client {
	return &http.Client{Transport: a.client.GetTransport()}
}

// AWSConfig returns an SDK configuration for the server: static
// credentials, region, endpoint and the server's HTTP client. It is built
// by hand, so the environment (AWS_CA_BUNDLE, AWS_PROFILE,
// AWS_ENDPOINT_URL_S3, ...) plays no part.
func (a *S3Access) AWSConfig() aws.Config {
	return aws.Config{
		Region:       a.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(a.AccessKey, a.SecretKey, ""),
		HTTPClient:   a.client,
		BaseEndpoint: aws.String(a.Endpoint),
	}
}

// Client returns a path-style S3 client for the server, with the SDK's
// default options otherwise; optFns adjust them.
func (a *S3Access) Client(optFns ...func(*s3.Options)) *s3.Client {
	return s3.NewFromConfig(a.AWSConfig(), append([]func(*s3.Options){func(o *s3.Options) {
		o.UsePathStyle = true
	}}, optFns...)...)
}

var bucketSeq atomic.Int64

// BucketOption configures a bucket made by [S3Access.NewBucket].
type BucketOption func(*bucketOptions)

type bucketOptions struct {
	objectLock bool
	retention  *types.DefaultRetention
}

// WithObjectLock creates the bucket with Object Lock enabled (which also
// turns versioning on): S3 allows it only at creation.
func WithObjectLock() BucketOption { return func(o *bucketOptions) { o.objectLock = true } }

// WithDefaultRetention creates the bucket with Object Lock and a default
// retention of mode for days, so that every new object version is locked
// without asking.
func WithDefaultRetention(mode types.ObjectLockRetentionMode, days int32) BucketOption {
	return func(o *bucketOptions) {
		o.objectLock = true
		o.retention = &types.DefaultRetention{Mode: mode, Days: aws.Int32(days)}
	}
}

// NewBucket creates a bucket with a plain client and returns its name. An
// empty name picks a unique one.
func (a *S3Access) NewBucket(t testing.TB, name string, opts ...BucketOption) string {
	t.Helper()
	var o bucketOptions
	for _, opt := range opts {
		opt(&o)
	}
	if name == "" {
		name = fmt.Sprintf("test-bucket-%d", bucketSeq.Add(1))
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if o.objectLock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := a.Client().CreateBucket(t.Context(), in); err != nil {
		t.Fatalf("testserver: create bucket %s: %v", name, err)
	}
	if o.retention != nil {
		if _, err := a.Client().PutObjectLockConfiguration(t.Context(), &s3.PutObjectLockConfigurationInput{
			Bucket: aws.String(name),
			ObjectLockConfiguration: &types.ObjectLockConfiguration{
				ObjectLockEnabled: types.ObjectLockEnabledEnabled,
				Rule:              &types.ObjectLockRule{DefaultRetention: o.retention},
			},
		}); err != nil {
			t.Fatalf("testserver: put object lock configuration of %s: %v", name, err)
		}
	}
	return name
}

// Env returns the environment a child process (a worker binary) needs to
// reach the server through the SDK's standard configuration chain:
// AWS_ENDPOINT_URL_S3, AWS_REGION, keys, ARCHIVER_S3_FORCE_PATH_STYLE=true
// and AWS_CA_BUNDLE (the test CA over TLS, empty, meaning unset, over HTTP).
func (a *S3Access) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=" + a.Endpoint,
		"AWS_REGION=" + a.Region,
		"AWS_ACCESS_KEY_ID=" + a.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + a.SecretKey,
		"AWS_CA_BUNDLE=" + a.CAFile,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PROFILE=",
		"ARCHIVER_S3_FORCE_PATH_STYLE=true",
	}
}

// s3Ready answers nil once the server answers a signed ListBuckets: it
// serves S3 and knows the root credentials.
func (a *S3Access) s3Ready() func(context.Context) error {
	client := a.Client(func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	}
}
