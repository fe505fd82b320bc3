package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

var (
	_ sender = (*rawSender)(nil)
	_ sender = (*netHTTPSender)(nil)
)

// A sender sends deliveries to the webhook on one keep-alive connection,
// one at a time (-client picks the kind).
type sender interface {
	// prepare builds the request for one rendered delivery, outside the
	// timing.
	prepare(ctx context.Context, body []byte, runID int64, sig []byte) error
	// send sends the prepared request and returns the response, whose
	// body the caller reads and closes.
	send() (*http.Response, error)
	close()
}

// newSender returns the sender -client names ("raw" or "nethttp") for the
// webhook at u, for bodies of bodyLen bytes.
func newSender(ctx context.Context, client string, u *url.URL, bodyLen int) (sender, error) {
	if client == "nethttp" {
		return newNetHTTPSender(u), nil
	}
	return dialRawSender(ctx, u, bodyLen)
}

// rawSender writes pre-rendered HTTP/1.1 requests on one keep-alive
// connection and parses the responses with net/http: the cheap client.
type rawSender struct {
	conn net.Conn
	br   *bufio.Reader
	head []byte // the request line and the headers common to every delivery
	req  []byte
}

// dialRawSender connects to u's host.
func dialRawSender(ctx context.Context, u *url.URL, bodyLen int) (*rawSender, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	head := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: GitHub-Hookshot/loadgen\r\nContent-Type: application/json\r\nX-GitHub-Event: workflow_run\r\nX-GitHub-Hook-ID: 1\r\nContent-Length: %d\r\n",
		u.RequestURI(), u.Host, bodyLen)
	return &rawSender{
		conn: conn,
		br:   bufio.NewReaderSize(conn, 4096),
		head: head,
		req:  make([]byte, 0, len(head)+256+bodyLen),
	}, nil
}

func (s *rawSender) prepare(_ context.Context, body []byte, runID int64, sig []byte) error {
	req := append(s.req[:0], s.head...)
	req = append(req, "X-GitHub-Delivery: loadgen-"...)
	req = strconv.AppendInt(req, runID, 10)
	req = append(req, "\r\nX-Hub-Signature-256: "...)
	req = append(req, sig...)
	req = append(req, "\r\n\r\n"...)
	s.req = append(req, body...)
	return nil
}

func (s *rawSender) send() (*http.Response, error) {
	if _, err := s.conn.Write(s.req); err != nil {
		return nil, err
	}
	return http.ReadResponse(s.br, nil)
}

func (s *rawSender) close() { s.conn.Close() }

// netHTTPSender sends the deliveries with a net/http.Client.
type netHTTPSender struct {
	client *http.Client
	url    string
	req    *http.Request
}

// newNetHTTPSender returns a sender with its own client, keeping one idle
// connection.
func newNetHTTPSender(u *url.URL) *netHTTPSender {
	return &netHTTPSender{
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}},
		url:    u.String(),
	}
}

func (s *netHTTPSender) prepare(ctx context.Context, body []byte, runID int64, sig []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "workflow_run")
	req.Header.Set("X-GitHub-Delivery", "loadgen-"+strconv.FormatInt(runID, 10))
	req.Header.Set("X-Hub-Signature-256", string(sig))
	s.req = req
	return nil
}

func (s *netHTTPSender) send() (*http.Response, error) { return s.client.Do(s.req) }

func (s *netHTTPSender) close() { s.client.CloseIdleConnections() }
