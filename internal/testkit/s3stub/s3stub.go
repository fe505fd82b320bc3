// Package s3stub is an S3 endpoint for tests that serves a real MinIO's
// objects but lets a test mark some of them as archived (GLACIER or
// DEEP_ARCHIVE), with AWS's behaviour for archived objects and
// RestoreObject. Everything else is proxied to MinIO unchanged.
//
// Why a stub: MinIO accepts only the STANDARD and REDUCED_REDUNDANCY
// storage classes, and making MinIO itself transition and restore objects
// needs its admin API to configure a remote tier, i.e. madmin-go, an AGPL
// library this module must not import.
//
// # What it does like AWS
//
// For a marked key (path-style requests, /bucket/key):
//   - GetObject without a restored copy: 403 with the REST error body
//     <Error><Code>InvalidObjectState</Code><Message>...</Message>
//     <StorageClass>DEEP_ARCHIVE</StorageClass><Resource>...</Resource>
//     <RequestId>...</RequestId><HostId>...</HostId></Error>, plus the
//     x-amz-request-id and x-amz-id-2 headers.
//   - HeadObject (and GetObject once restored): MinIO's answer plus
//     x-amz-storage-class and, once a restore was asked for,
//     x-amz-restore: ongoing-request="true", then ongoing-request="false",
//     expiry-date="Fri, 21 Dec 2012 00:00:00 GMT".
//   - POST /bucket/key?restore with a RestoreRequest body (Days,
//     GlacierJobParameters.Tier): 202 Accepted the first time; 409
//     RestoreAlreadyInProgress while the restore runs; 200 OK once
//     restored, moving the expiry to Days from now. A body that is not a
//     RestoreRequest or lacks Days answers 400 MalformedXML.
//   - The expiry date is Days after the restore completes, rounded up to
//     the next midnight UTC.
//   - A successful PUT or DELETE of the key replaces the object: the mark
//     is dropped.
//
// Sources: the RestoreObject, HeadObject and GetObject API references
// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_RestoreObject.html:
// "If the object is not previously restored, then Amazon S3 returns 202
// Accepted", "If the object is previously restored, Amazon S3 returns 200
// OK", "RestoreAlreadyInProgress ... 409 Conflict"; API_HeadObject.html,
// x-amz-restore: `ongoing-request="false", expiry-date="Fri, 21 Dec 2012
// 00:00:00 GMT"`; API_GetObject.html, InvalidObjectState for S3 Glacier
// Flexible Retrieval and Deep Archive objects), the error body of
// ErrorResponses.html (Code, Message, Resource, RequestId) and the SDK's
// types.InvalidObjectState (StorageClass, AccessTier), and the user
// guide's restoring-objects.html for the expiry rounding.
//
// # What it does not do
//
// It checks no signature on the requests it answers itself (restores and
// refused reads): MinIO checks the ones it proxies, which is why the Host
// header is forwarded as the client signed it. It ignores versionId,
// OutputLocation and restore speed upgrades, does not model
// Intelligent-Tiering archive tiers, and does not rewrite the StorageClass
// of ListObjectsV2 answers. Keys of unmarked objects, including a restore
// of one, are entirely MinIO's.
package s3stub

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// RestoreRequest is one RestoreObject request the stub received.
type RestoreRequest struct {
	Bucket, Key string
	Days        int        // 0 when absent
	Tier        types.Tier // "" when absent
	Status      int        // the status answered
}

// Server is the stub; create it with [New].
type Server struct {
	// URL is the endpoint to give S3 clients (path-style), http://127.0.0.1:PORT.
	URL string

	srv   *httptest.Server
	proxy *httputil.ReverseProxy
	now   func() time.Time

	mu       sync.Mutex
	objects  map[string]*coldObject // by "bucket/key"
	restores []RestoreRequest
}

type coldObject struct {
	class  types.StorageClass
	state  restoreState
	days   int
	expiry time.Time
}

type restoreState int

const (
	notRestored restoreState = iota
	restoring
	restored
)

// New starts the stub in front of upstream (a MinIO endpoint such as
// testserver.MinIOServer.Endpoint), reaching it through transport (nil:
// a transport without proxy), and closes it in t.Cleanup.
func New(t testing.TB, upstream string, transport http.RoundTripper) *Server {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("s3stub: upstream %q: %v", upstream, err)
	}
	if transport == nil {
		transport = &http.Transport{Proxy: nil}
	}
	s := &Server{objects: map[string]*coldObject{}, now: time.Now}
	s.proxy = &httputil.ReverseProxy{
		// The client signed the Host it sent: keep it, or MinIO refuses
		// the signature.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport:      transport,
		ModifyResponse: s.modifyResponse,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// Archive marks bucket/key as archived in class (types.StorageClassGlacier
// or types.StorageClassDeepArchive), with no restore. The object itself
// stays in MinIO.
func (s *Server) Archive(bucket, key string, class types.StorageClass) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[bucket+"/"+key] = &coldObject{class: class}
}

// CompleteRestore finishes the ongoing restore of bucket/key, as S3 does
// hours later: GetObject then reads it, and HeadObject shows the expiry.
func (s *Server) CompleteRestore(bucket, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[bucket+"/"+key]
	if o == nil || o.state != restoring {
		return fmt.Errorf("s3stub: %s/%s: no restore in progress", bucket, key)
	}
	o.state = restored
	o.expiry = expiryAfter(s.now(), o.days)
	return nil
}

// Restoring returns the keys ("bucket/key") whose restore is in progress.
func (s *Server) Restoring() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, o := range s.objects {
		if o.state == restoring {
			out = append(out, k)
		}
	}
	return out
}

// Restores returns the RestoreObject requests received on archived keys,
// in order.
func (s *Server) Restores() []RestoreRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RestoreRequest(nil), s.restores...)
}

// expiryAfter is days after t, rounded up to the next midnight UTC.
func expiryAfter(t time.Time, days int) time.Time {
	e := t.UTC().AddDate(0, 0, days)
	return time.Date(e.Year(), e.Month(), e.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
}

// coldKey is the request's archived object and its bucket and key, nil
// if the request is not about one.
type coldKey struct {
	bucket, key string
	obj         coldObject // a snapshot
}

type ctxKey struct{}

func (s *Server) lookup(r *http.Request) *coldKey {
	bucket, key, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !ok || key == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[bucket+"/"+key]
	if o == nil {
		return nil
	}
	return &coldKey{bucket: bucket, key: key, obj: *o}
}

// subresources are the GET query parameters that make a request something
// other than a read of the object's bytes (allowed on archived objects).
var subresources = []string{"acl", "tagging", "retention", "legal-hold", "attributes", "torrent", "uploadId"}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	ck := s.lookup(r)
	if ck == nil {
		s.proxy.ServeHTTP(w, r)
		return
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPost && q.Has("restore"):
		s.restore(w, r, ck)
		return
	case r.Method == http.MethodGet && ck.obj.state != restored && !hasAny(q, subresources):
		writeError(w, r, http.StatusForbidden, "InvalidObjectState",
			"The operation is not valid for the object's storage class", string(ck.obj.class))
		return
	}
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ck)))
}

func hasAny(q url.Values, keys []string) bool {
	for _, k := range keys {
		if q.Has(k) {
			return true
		}
	}
	return false
}

// modifyResponse adds the archived object's headers to MinIO's answer, and
// drops the mark when the object was replaced or deleted.
func (s *Server) modifyResponse(resp *http.Response) error {
	ck, _ := resp.Request.Context().Value(ctxKey{}).(*coldKey)
	if ck == nil {
		return nil
	}
	ok := resp.StatusCode/100 == 2
	switch resp.Request.Method {
	case http.MethodPut, http.MethodDelete:
		if ok && !hasAny(resp.Request.URL.Query(), subresources) {
			s.mu.Lock()
			delete(s.objects, ck.bucket+"/"+ck.key)
			s.mu.Unlock()
		}
	case http.MethodGet, http.MethodHead:
		if ok || resp.StatusCode == http.StatusNotModified {
			resp.Header.Set("X-Amz-Storage-Class", string(ck.obj.class))
			if h := restoreHeader(ck.obj); h != "" {
				resp.Header.Set("X-Amz-Restore", h)
			}
		}
	}
	return nil
}

// restoreHeader is the x-amz-restore value of o, "" before any restore.
func restoreHeader(o coldObject) string {
	switch o.state {
	case restoring:
		return `ongoing-request="true"`
	case restored:
		return fmt.Sprintf(`ongoing-request="false", expiry-date="%s"`, o.expiry.Format(http.TimeFormat))
	}
	return ""
}

// restoreBody is the RestoreRequest document of RestoreObject.
type restoreBody struct {
	XMLName              xml.Name `xml:"RestoreRequest"`
	Days                 *int     `xml:"Days"`
	GlacierJobParameters *struct {
		Tier string `xml:"Tier"`
	} `xml:"GlacierJobParameters"`
}

func (s *Server) restore(w http.ResponseWriter, r *http.Request, ck *coldKey) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.", "")
		return
	}
	var body restoreBody
	if err := xml.Unmarshal(b, &body); err != nil || body.Days == nil || *body.Days < 1 {
		writeError(w, r, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.", "")
		return
	}
	req := RestoreRequest{Bucket: ck.bucket, Key: ck.key, Days: *body.Days}
	if body.GlacierJobParameters != nil {
		req.Tier = types.Tier(body.GlacierJobParameters.Tier)
	}
	s.mu.Lock()
	o := s.objects[ck.bucket+"/"+ck.key]
	if o == nil { // replaced meanwhile
		s.mu.Unlock()
		s.proxy.ServeHTTP(w, r)
		return
	}
	switch o.state {
	case notRestored:
		o.state, o.days = restoring, req.Days
		req.Status = http.StatusAccepted
	case restoring:
		req.Status = http.StatusConflict
	case restored:
		o.days, o.expiry = req.Days, expiryAfter(s.now(), req.Days)
		req.Status = http.StatusOK
	}
	s.restores = append(s.restores, req)
	s.mu.Unlock()
	if req.Status == http.StatusConflict {
		writeError(w, r, http.StatusConflict, "RestoreAlreadyInProgress", "Object restore is already in progress", "")
		return
	}
	setRequestIDs(w)
	w.WriteHeader(req.Status)
}

// s3Error is S3's REST error body.
type s3Error struct {
	XMLName      xml.Name `xml:"Error"`
	Code         string   `xml:"Code"`
	Message      string   `xml:"Message"`
	StorageClass string   `xml:"StorageClass,omitempty"`
	Resource     string   `xml:"Resource"`
	RequestID    string   `xml:"RequestId"`
	HostID       string   `xml:"HostId"`
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg, class string) {
	id, host := setRequestIDs(w)
	b, _ := xml.Marshal(s3Error{Code: code, Message: msg, StorageClass: class, Resource: r.URL.Path, RequestID: id, HostID: host}) // strings only: cannot fail
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, xml.Header)
		w.Write(b)
	}
}

// setRequestIDs sets x-amz-request-id and x-amz-id-2, as every S3 answer
// has them.
func setRequestIDs(w http.ResponseWriter) (id, host string) {
	id = strings.ToUpper(rand.Text()[:16])
	host = rand.Text()
	w.Header().Set("X-Amz-Request-Id", id)
	w.Header().Set("X-Amz-Id-2", host)
	return id, host
}
