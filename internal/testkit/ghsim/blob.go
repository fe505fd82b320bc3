package ghsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// blobAPIVersion is the Azure storage version named in blob URLs and
// responses.
const blobAPIVersion = "2021-12-02"

// blobPrefix is the path of artifact blobs on the blob host.
const blobPrefix = "/actions-results/"

// disposition is the Content-Disposition of the artifact's download: the
// zip's name for an archive, the file's name for a Raw artifact.
func disposition(a *Artifact) string {
	name := a.Name + ".zip"
	if a.Raw {
		name = a.FileName
	}
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name)
	d := `attachment; filename="` + quoted + `"`
	for _, r := range name {
		if r > 0x7e || r < 0x20 {
			return d + "; filename*=UTF-8''" + url.PathEscape(name)
		}
	}
	return d
}

// signURL returns the pre-signed download URL of the artifact, valid until
// expiry, in the shape of an Azure SAS URL: the signature (HMAC-SHA256
// under a per-server key) covers the path, the validity window and the
// Content-Disposition.
func (s *Server) signURL(a *Artifact, expiry time.Time) string {
	se := expiry.UTC().Truncate(time.Second)
	st := se.Add(-s.opts.URLTTL - 5*time.Minute)
	path := blobPrefix + strconv.FormatInt(a.ID, 10)
	q := url.Values{
		"sv":   {blobAPIVersion},
		"spr":  {"http"},
		"st":   {st.Format(time.RFC3339)},
		"se":   {se.Format(time.RFC3339)},
		"sr":   {"b"},
		"sp":   {"r"},
		"rscd": {disposition(a)},
	}
	q.Set("sig", s.sign(path, q))
	return strings.TrimSuffix(s.blobURL, "/") + path + "?" + q.Encode()
}

// sign computes the signature of a blob URL.
func (s *Server) sign(path string, q url.Values) string {
	m := hmac.New(sha256.New, s.signKey)
	fmt.Fprintf(m, "%s\n%s\n%s\n%s\n%s\n%s", q.Get("sp"), q.Get("st"), q.Get("se"), path, q.Get("sv"), q.Get("rscd"))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// blobHandler serves the blob host. It rejects any request that carries an
// Authorization header: a pre-signed URL takes no other credentials, and a
// client that sends its GitHub token here leaks it.
func (s *Server) blobHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, onStatus: func(c int) { s.countRequest(RouteBlob, c) }}
		defer func() {
			sw.finish()
			s.log.Debug("ghsim: blob request", "method", r.Method, "path", r.URL.Path, "status", sw.code())
		}()
		reqID, ok := s.blobPreamble(sw, r)
		if !ok {
			return
		}
		idStr, ok := strings.CutPrefix(r.URL.Path, blobPrefix)
		id, err := strconv.ParseInt(idStr, 10, 64)
		if !ok || err != nil {
			azureError(sw, reqID, http.StatusNotFound, "ResourceNotFound", "The specified resource does not exist.", "")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			azureError(sw, reqID, http.StatusMethodNotAllowed, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.", "")
			return
		}
		s.serveBlob(sw, r, reqID, id)
	})
}

// blobPreamble sets the blob host's response headers and rejects a
// request that carries an Authorization header (400, counted in
// Stats.AuthRejected): a pre-signed URL takes no other credentials, and a
// client that sends its GitHub token here leaks it. It returns the
// request id, and false when it answered.
func (s *Server) blobPreamble(sw *statusWriter, r *http.Request) (string, bool) {
	reqID := s.requestID()
	h := sw.Header()
	h.Set("Server", "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0")
	h.Set("x-ms-request-id", reqID)
	h.Set("x-ms-version", blobAPIVersion)
	if _, ok := r.Header["Authorization"]; ok {
		s.mu.Lock()
		s.stats.AuthRejected++
		s.mu.Unlock()
		s.log.Warn("ghsim: blob request with an Authorization header", "path", r.URL.Path)
		azureError(sw, reqID, http.StatusBadRequest, "InvalidAuthenticationInfo",
			"Authentication information is not given in the correct format. Check the value of Authorization header.", "")
		return reqID, false
	}
	return reqID, true
}

// checkSignedURL checks the signature and expiry of a signed blob URL for
// path, answering 403 AuthenticationFailed when either is wrong. It
// returns the server clock's now, and false when it answered.
func (s *Server) checkSignedURL(sw *statusWriter, reqID, path string, q url.Values) (time.Time, bool) {
	if sig := q.Get("sig"); sig == "" || !hmac.Equal([]byte(sig), []byte(s.sign(path, q))) {
		azureError(sw, reqID, http.StatusForbidden, "AuthenticationFailed", authFailedMessage,
			"Signature did not match. String to sign used was r")
		return time.Time{}, false
	}
	now := s.now()
	se, err := time.Parse(time.RFC3339, q.Get("se"))
	if err != nil || now.After(se) {
		azureError(sw, reqID, http.StatusForbidden, "AuthenticationFailed", authFailedMessage,
			fmt.Sprintf("Signed expiry time [%s] must be after current time [%s]", se.UTC().Format(http.TimeFormat), now.UTC().Format(http.TimeFormat)))
		return time.Time{}, false
	}
	return now, true
}

// serveBlob checks the signed URL and serves the artifact's body (or the
// range asked for).
func (s *Server) serveBlob(sw *statusWriter, r *http.Request, reqID string, id int64) {
	q := r.URL.Query()
	now, ok := s.checkSignedURL(sw, reqID, blobPrefix+strconv.FormatInt(id, 10), q)
	if !ok {
		return
	}
	s.mu.Lock()
	ap, ok := s.artifacts[id]
	var a Artifact
	if ok {
		a = *ap
	}
	s.mu.Unlock()
	if !ok || a.Deleted || now.Before(a.VisibleAt) {
		azureError(sw, reqID, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
		return
	}
	s.mu.Lock()
	if s.stats.BlobRequestsByArtifact == nil {
		s.stats.BlobRequestsByArtifact = map[int64]int{}
	}
	s.stats.BlobRequestsByArtifact[id]++
	s.mu.Unlock()

	size := a.Size
	status, start, end := http.StatusOK, int64(0), size-1
	if rh := r.Header.Get("Range"); rh != "" {
		rs, re, kind := parseRange(rh, size)
		rec := RangeRequest{ArtifactID: id, Header: rh, Start: rs}
		if kind == rangeIgnored {
			rec.Start = -1
		}
		s.mu.Lock()
		s.stats.Ranges = append(s.stats.Ranges, rec)
		s.mu.Unlock()
		if !a.NoRange {
			switch kind {
			case rangeOK:
				status, start, end = http.StatusPartialContent, rs, re
			case rangeUnsatisfiable:
				sw.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
				azureError(sw, reqID, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The range specified is invalid for the current size of the resource.", "")
				return
			}
		}
	}
	fault, faulty := s.takeFault(RouteBlob, a.ID)
	if faulty && fault.Kind == FaultServerError {
		code, msg := "InternalError", "Server encountered an internal error. Please try again after some time."
		if fault.Status == http.StatusServiceUnavailable {
			code, msg = "ServerBusy", "The server is currently unable to receive requests. Please retry your request."
		}
		azureError(sw, reqID, fault.Status, code, msg, "")
		return
	}

	length := end - start + 1
	h := sw.Header()
	if a.Raw {
		h.Set("Content-Type", "application/octet-stream")
	} else {
		h.Set("Content-Type", "application/zip")
	}
	h.Set("Content-Disposition", q.Get("rscd"))
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if !a.NoRange {
		h.Set("Accept-Ranges", "bytes")
	}
	if status == http.StatusPartialContent {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
	}
	h.Set("ETag", fmt.Sprintf(`"0x8D%013X"`, splitmix64(uint64(a.Seed)^uint64(a.Size))>>12))
	h.Set("Last-Modified", a.CreatedAt.UTC().Format(http.TimeFormat))
	h.Set("x-ms-blob-type", "BlockBlob")
	h.Set("x-ms-creation-time", a.CreatedAt.UTC().Format(http.TimeFormat))
	if r.Method == http.MethodHead {
		sw.WriteHeader(status)
		return
	}
	c := a.Content()
	if _, err := c.Seek(start, io.SeekStart); err != nil {
		panic(err) // start is never negative
	}
	switch {
	case faulty && fault.Kind == FaultReset:
		s.resetStream(sw, status, id, c, length, fault.Bytes)
	case faulty && fault.Kind == FaultThrottle:
		sw.WriteHeader(status)
		s.copyBody(r.Context(), sw, id, c, length, fault.Bytes)
	case faulty && fault.Kind == FaultStall:
		sw.WriteHeader(status)
		s.stallStream(r.Context(), sw, id, c, length, fault.Bytes, time.Duration(fault.Duration))
	default:
		sw.WriteHeader(status)
		s.copyBody(r.Context(), sw, id, c, length, 0)
	}
}

const authFailedMessage = "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature."

// copyBody writes length bytes of c, at bytesPerSecond when it is positive.
// It stops at the first write error (the client went away) or when ctx
// ends, and reports whether it wrote everything.
func (s *Server) copyBody(ctx context.Context, w http.ResponseWriter, id int64, c *Content, length, bytesPerSecond int64) bool {
	chunk := int64(256 << 10)
	if bytesPerSecond > 0 {
		chunk = min(chunk, max(bytesPerSecond/20, 1))
	}
	buf := make([]byte, chunk)
	rc := http.NewResponseController(w)
	began := time.Now()
	var sent int64
	for sent < length {
		if bytesPerSecond > 0 {
			due := began.Add(time.Duration(float64(sent) / float64(bytesPerSecond) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return false
				case <-t.C:
				}
			}
		}
		k := min(chunk, length-sent)
		n, _ := c.Read(buf[:k])
		m, err := w.Write(buf[:n])
		sent += int64(m)
		s.countBlobBytes(id, int64(m))
		if err != nil {
			return false
		}
		if bytesPerSecond > 0 {
			_ = rc.Flush()
		}
	}
	return true
}

// stallStream writes n body bytes (at most length-1, so a stall always
// comes before the end), flushes them, sends nothing for d, then writes the
// rest. The stall ends early when ctx ends: the client went away, or Close.
func (s *Server) stallStream(ctx context.Context, w http.ResponseWriter, id int64, c *Content, length, n int64, d time.Duration) {
	n = min(n, max(length-1, 0))
	if !s.copyBody(ctx, w, id, c, n, 0) {
		return
	}
	if err := http.NewResponseController(w).Flush(); err != nil {
		return
	}
	t := time.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
		return
	case <-t.C:
	}
	s.copyBody(ctx, w, id, c, length-n, 0)
}

// resetStream writes the response head and n body bytes (at most
// length-1, so the body is always cut short) straight onto the TCP
// connection, then closes it with SO_LINGER 0: the client sees a
// connection reset in the middle of the body.
func (s *Server) resetStream(sw *statusWriter, status int, id int64, c *Content, length, n int64) {
	n = min(n, max(length-1, 0))
	conn, brw, err := http.NewResponseController(sw.ResponseWriter).Hijack()
	if err != nil {
		s.log.Error("ghsim: hijack blob connection", "artifact_id", id, "err", err)
		http.Error(sw, "ghsim: hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	sw.status = status
	// Close cuts a client that stopped reading; srv.Close does not reach
	// hijacked connections.
	stop := context.AfterFunc(s.ctx, func() { _ = conn.Close() })
	defer func() {
		stop()
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	}()
	sw.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	var head bytes.Buffer
	fmt.Fprintf(&head, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	_ = sw.Header().Write(&head)
	head.WriteString("\r\n")
	if _, err := brw.Write(head.Bytes()); err != nil {
		return
	}
	written, _ := io.CopyN(brw, c, n)
	if err := brw.Flush(); err == nil {
		s.countBlobBytes(id, written)
	}
}

type rangeKind int

const (
	rangeIgnored       rangeKind = iota // not a single byte range: serve the whole body
	rangeOK                             // a satisfiable single range
	rangeUnsatisfiable                  // 416
)

// parseRange parses a single byte range ("bytes=N-", "bytes=N-M",
// "bytes=-N") against size, returning the inclusive bounds. Multiple ranges
// and malformed headers are ignored, as RFC 9110 allows.
func parseRange(h string, size int64) (start, end int64, kind rangeKind) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, rangeIgnored
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, rangeIgnored
	}
	if first == "" { // suffix: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, rangeIgnored
		}
		if n == 0 || size == 0 {
			return max(size-n, 0), 0, rangeUnsatisfiable
		}
		return max(size-n, 0), size - 1, rangeOK
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, rangeIgnored
	}
	end = size - 1
	if last != "" {
		e, err := strconv.ParseInt(last, 10, 64)
		if err != nil || e < start {
			return 0, 0, rangeIgnored
		}
		end = min(e, size-1)
	}
	if start >= size {
		return start, 0, rangeUnsatisfiable
	}
	return start, end, rangeOK
}

// azureError writes an Azure Blob Storage error: XML body and
// x-ms-error-code.
func azureError(w http.ResponseWriter, reqID string, status int, code, message, detail string) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><Error><Code>`)
	b.WriteString(code)
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(fmt.Sprintf("%s\nRequestId:%s\nTime:%s", message, reqID, time.Now().UTC().Format("2006-01-02T15:04:05.0000000Z"))))
	b.WriteString("</Message>")
	if detail != "" {
		b.WriteString("<AuthenticationErrorDetail>")
		_ = xml.EscapeText(&b, []byte(detail))
		b.WriteString("</AuthenticationErrorDetail>")
	}
	b.WriteString("</Error>")
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
