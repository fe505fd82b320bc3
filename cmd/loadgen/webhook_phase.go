package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// runWebhook sends deliveries over o.conns keep-alive connections.
func runWebhook(ctx context.Context, o options, target string, g *generator, natsPID int) (phaseResult, error) {
	u, err := url.Parse(target)
	if err != nil {
		return phaseResult{}, fmt.Errorf("-url: %w", err)
	}
	return window(ctx, o, natsPID, func(_ int, stop func() bool, measure func(time.Duration, string)) error {
		s, err := newSender(ctx, o.client, u, len(g.template))
		if err != nil {
			return err
		}
		defer s.close()
		return sendDeliveries(ctx, g, s, stop, measure)
	})
}

// sendDeliveries sends a new distinct delivery with s until stop reports
// true, and measures each from the request's first byte until the
// response is read.
func sendDeliveries(ctx context.Context, g *generator, s sender, stop func() bool, measure func(time.Duration, string)) error {
	body := slices.Clone(g.template)
	var sig []byte
	for !stop() {
		id := g.runID()
		sig = g.render(body, id, sig)
		if err := s.prepare(ctx, body, id, sig); err != nil {
			return err
		}
		start := time.Now()
		resp, err := s.send()
		if err != nil {
			return err
		}
		dup, err := accepted(resp)
		lat := time.Since(start)
		if err != nil {
			return err
		}
		measure(lat, outcome(resp.StatusCode, dup))
	}
	return nil
}

// accepted drains the response and reports a 202's duplicate flag.
func accepted(resp *http.Response) (dup bool, err error) {
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusAccepted && bytes.Contains(b, []byte(`"duplicate":true`)), nil
}

// outcome names an answer for window: "ok", "dup" or "HTTP <status>".
func outcome(status int, dup bool) string {
	switch {
	case status == http.StatusAccepted && dup:
		return "dup"
	case status == http.StatusAccepted:
		return "ok"
	default:
		return "HTTP " + strconv.Itoa(status)
	}
}
