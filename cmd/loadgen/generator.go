package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
	"github.com/artifact-archiver/artifact-archiver/pkg/webhook"
)

// generator renders distinct signed deliveries cheaply: the body is a
// template whose run id digits are patched in place, and the HMAC state
// after the unchanging prefix is computed once and cloned.
type generator struct {
	secret    []byte
	template  []byte
	positions []int // offsets of the run id digits
	prefixMAC hash.Hash
	event     []byte // the compact event for the same run, for the raw phase
	next      atomic.Int64
	base      int64
}

const (
	placeholderRunID = 1_999_999_999_999
	runIDDigits      = 13
)

func newGenerator(secret string) (*generator, error) {
	body, err := ghsim.WorkflowRunPayload(ghsim.RunPayload{InstallationID: 4242, RepoID: 777, RunID: placeholderRunID, RunAttempt: 1})
	if err != nil {
		return nil, err
	}
	ph := []byte(strconv.FormatInt(placeholderRunID, 10))
	g := &generator{secret: []byte(secret), template: body}
	for i := 0; ; {
		j := bytes.Index(body[i:], ph)
		if j < 0 {
			break
		}
		g.positions = append(g.positions, i+j)
		i += j + len(ph)
	}
	if len(g.positions) == 0 {
		return nil, errors.New("run id placeholder not found in the payload")
	}
	g.prefixMAC = hmac.New(sha256.New, g.secret)
	g.prefixMAC.Write(body[:g.positions[0]])
	if _, err := g.prefixMAC.(hash.Cloner).Clone(); err != nil {
		return nil, fmt.Errorf("hmac clone: %w", err)
	}
	run, err := webhook.ParseWorkflowRun(body)
	if err != nil {
		return nil, err
	}
	run.Event.DeliveryID = "00000000-0000-0000-0000-000000000000"
	run.Event.ReceivedAt = time.Now().UTC()
	if g.event, err = run.Event.Encode(); err != nil {
		return nil, err
	}
	// Distinct from earlier runs against the same JetStream (72 h dedup
	// window): a time-based block of ids.
	g.base = 1_000_000_000_000 + time.Now().Unix()%100_000*5_000_000
	return g, nil
}

// runID returns a new distinct run id of runIDDigits digits.
func (g *generator) runID() int64 { return g.base + g.next.Add(1) }

// render writes the delivery for runID into body (a copy of the template)
// and returns its signature header value.
func (g *generator) render(body []byte, runID int64, sig []byte) []byte {
	var digits [runIDDigits]byte
	strconv.AppendInt(digits[:0], runID, 10)
	for _, p := range g.positions {
		copy(body[p:], digits[:])
	}
	mac, _ := g.prefixMAC.(hash.Cloner).Clone()
	mac.Write(body[g.positions[0]:])
	var sum [sha256.Size]byte
	sig = append(sig[:0], "sha256="...)
	return hex.AppendEncode(sig, mac.Sum(sum[:0]))
}
