package s3stub_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/s3stub"
	"github.com/artifact-archiver/artifact-archiver/internal/testkit/testserver"
)

// s3Error is S3's REST error body.
type s3Error struct {
	XMLName      xml.Name `xml:"Error"`
	Code         string
	Message      string
	StorageClass string
	Resource     string
	RequestID    string `xml:"RequestId"`
	HostID       string `xml:"HostId"`
}

// TestWire checks the stub's answers on the wire: status codes, headers
// and error bodies as AWS documents them, and that an overwrite drops the
// archive mark.
func TestWire(t *testing.T) {
	srv := testserver.MinIO(t)
	stub := s3stub.New(t, srv.Endpoint, srv.HTTPClient().Transport)
	cfg := srv.AWSConfig()
	cfg.BaseEndpoint = aws.String(stub.URL)
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	bucket := srv.NewBucket(t, "")
	put := func(key, body string) {
		t.Helper()
		if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	put("a/deep", "deep bytes")
	stub.Archive(bucket, "a/deep", types.StorageClassDeepArchive)

	// A read without a restore: 403 InvalidObjectState, XML body.
	resp := do(t, http.MethodGet, stub.URL+"/"+bucket+"/a/deep", "")
	e := decodeError(t, resp, http.StatusForbidden)
	if e.Code != "InvalidObjectState" || e.StorageClass != "DEEP_ARCHIVE" || e.Message == "" || e.Resource != "/"+bucket+"/a/deep" ||
		e.RequestID == "" || e.RequestID != resp.Header.Get("X-Amz-Request-Id") || e.HostID != resp.Header.Get("X-Amz-Id-2") {
		t.Fatalf("error body %+v, headers %v", e, resp.Header)
	}

	// HEAD is MinIO's answer plus the class; no x-amz-restore yet.
	head, err := client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("a/deep")})
	if err != nil || head.StorageClass != types.StorageClassDeepArchive || head.Restore != nil || aws.ToInt64(head.ContentLength) != 10 {
		t.Fatalf("HEAD: %+v, %v", head, err)
	}

	// RestoreObject: a body that is not a RestoreRequest, then 202, 409.
	e = decodeError(t, do(t, http.MethodPost, stub.URL+"/"+bucket+"/a/deep?restore", "<Nope/>"), http.StatusBadRequest)
	if e.Code != "MalformedXML" {
		t.Fatalf("bad restore body: %+v", e)
	}
	body := `<RestoreRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Days>2</Days><GlacierJobParameters><Tier>Bulk</Tier></GlacierJobParameters></RestoreRequest>`
	if resp := do(t, http.MethodPost, stub.URL+"/"+bucket+"/a/deep?restore", body); resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Amz-Request-Id") == "" {
		t.Fatalf("first restore: %s %v", resp.Status, resp.Header)
	}
	if e := decodeError(t, do(t, http.MethodPost, stub.URL+"/"+bucket+"/a/deep?restore", body), http.StatusConflict); e.Code != "RestoreAlreadyInProgress" {
		t.Fatalf("second restore: %+v", e)
	}
	head, err = client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("a/deep")})
	if err != nil || aws.ToString(head.Restore) != `ongoing-request="true"` {
		t.Fatalf("HEAD while restoring: %v, %v", aws.ToString(head.Restore), err)
	}

	// Completed: GET passes through with the headers; the expiry is Days
	// after completion, rounded up to midnight UTC.
	if err := stub.CompleteRestore(bucket, "a/deep"); err != nil {
		t.Fatal(err)
	}
	if err := stub.CompleteRestore(bucket, "a/deep"); err == nil {
		t.Fatal("a second CompleteRestore succeeded")
	}
	get, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("a/deep")})
	if err != nil {
		t.Fatalf("GET after the restore: %v", err)
	}
	b, _ := io.ReadAll(get.Body)
	get.Body.Close()
	h := aws.ToString(get.Restore)
	prefix := `ongoing-request="false", expiry-date="`
	if string(b) != "deep bytes" || get.StorageClass != types.StorageClassDeepArchive || !strings.HasPrefix(h, prefix) {
		t.Fatalf("GET after the restore: %q, class %s, x-amz-restore %q", b, get.StorageClass, h)
	}
	expiry, err := http.ParseTime(strings.TrimSuffix(strings.TrimPrefix(h, prefix), `"`))
	now := time.Now().UTC()
	if err != nil || expiry.Hour() != 0 || expiry.Minute() != 0 || !expiry.After(now.AddDate(0, 0, 2)) || expiry.After(now.AddDate(0, 0, 3)) {
		t.Fatalf("expiry-date %v (%v), want the midnight after 2 days from %v", expiry, err, now)
	}
	if resp := do(t, http.MethodPost, stub.URL+"/"+bucket+"/a/deep?restore", body); resp.StatusCode != http.StatusOK {
		t.Fatalf("restore of a restored object: %s, want 200", resp.Status)
	}

	// An overwrite is a new STANDARD object.
	put("a/deep", "new")
	head, err = client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("a/deep")})
	if err != nil || head.StorageClass != "" || head.Restore != nil {
		t.Fatalf("HEAD after an overwrite: class %q, restore %v, %v", head.StorageClass, aws.ToString(head.Restore), err)
	}
	if n := len(stub.Restores()); n != 3 {
		t.Fatalf("%d restore requests recorded, want 3 (the malformed one is not)", n)
	}
}

// do sends an unsigned request: the stub answers these itself (MinIO
// would refuse them for want of a signature).
func do(t *testing.T, method, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{} // no proxy from the environment
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

func decodeError(t *testing.T, resp *http.Response, status int) s3Error {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/xml" || !bytes.HasPrefix(b, []byte(xml.Header)) {
		t.Fatalf("%s, Content-Type %q, want %d with an XML body:\n%s", resp.Status, resp.Header.Get("Content-Type"), status, b)
	}
	var e s3Error
	if err := xml.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body: %v\n%s", err, b)
	}
	return e
}
