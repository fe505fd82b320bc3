package archivectl

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
	"github.com/artifact-archiver/artifact-archiver/pkg/runevent"
)

var dlqCommand = &command{
	name:     "dlq",
	synopsis: "ls|show|replay|purge ...",
	summary:  "inspect, replay and purge dead-lettered run events",
	help: `Works on the dead-letter stream (ARCHIVER_DLQ_STREAM, default ARCHIVER_DLQ).
A worker writes a record there when a run event failed permanently or
reached its maximum deliveries: the original event body, with the error
in headers (Archiver-Error, Archiver-Error-Kind, Archiver-Deliveries,
Archiver-Original-Subject, ...). The stream also captures JetStream's
MAX_DELIVERIES advisories, for events whose worker died on the last try.

Replaying publishes the original event body to its original subject in the
run stream with a fresh message id, <wr:run:attempt>:replay:<dlq sequence>,
so that it is not dropped as a duplicate, and deletes the record once the
publish is acknowledged. For an advisory, the stuck original message is
republished the same way and then removed from the run stream.

Examples:
  archivectl dlq ls
  archivectl dlq show 17
  archivectl dlq replay 17 18
  archivectl dlq replay --all
  archivectl dlq purge --yes`,
	env:         []envGroup{envNATS, envOutput},
	subcommands: []*command{dlqLsCommand, dlqShowCommand, dlqReplayCommand, dlqPurgeCommand},
}

var dlqLsCommand = &command{
	name:     "dlq ls",
	synopsis: "[--json]",
	summary:  "list the dead letters",
	help:     "Lists every dead-letter record: sequence, time, kind, run and error.",
	env:      []envGroup{envNATS, envOutput},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		json := fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, c *cli, args []string) error {
			if len(args) != 0 {
				return usagef("no arguments expected, got %q", args)
			}
			return withDLQ(ctx, c, func(d *dlq) error { return d.ls(ctx, *json) })
		}
	},
}

var dlqShowCommand = &command{
	name:     "dlq show",
	synopsis: "SEQ [--json]",
	summary:  "show one dead letter: headers and event",
	help:     "Shows the record at sequence SEQ of the dead-letter stream: every header and the event body.",
	env:      []envGroup{envNATS},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		json := fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, c *cli, args []string) error {
			seqs, err := parseSeqs(args)
			if err != nil {
				return err
			}
			if len(seqs) != 1 {
				return usagef("want one SEQ")
			}
			return withDLQ(ctx, c, func(d *dlq) error { return d.show(ctx, seqs[0], *json) })
		}
	},
}

var dlqReplayCommand = &command{
	name:     "dlq replay",
	synopsis: "SEQ... | --all [--dry-run] [--json]",
	summary:  "republish dead letters to the run stream",
	help: `Republishes the events of the records SEQ... (or of every record, --all) to
their original subjects with the message id <wr:run:attempt>:replay:<SEQ>,
then deletes each record once JetStream has acknowledged its event. An
undecodable event cannot be replayed (inspect it with show, remove it with
purge). Exit code 1 if any replay failed.`,
	env: []envGroup{envNATS, envOutput},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		all := fs.Bool("all", false, "replay every record")
		dryRun := fs.Bool("dry-run", false, "print what would be replayed; change nothing")
		json := fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, c *cli, args []string) error {
			seqs, err := parseSeqs(args)
			if err != nil {
				return err
			}
			if *all == (len(seqs) > 0) {
				return usagef("name the records to replay (SEQ...) or pass --all, not both")
			}
			return withDLQ(ctx, c, func(d *dlq) error { return d.replay(ctx, seqs, *all, *dryRun, *json) })
		}
	},
}

var dlqPurgeCommand = &command{
	name:     "dlq purge",
	synopsis: "[SEQ...] [--yes]",
	summary:  "delete dead letters (all, or SEQ...)",
	help: `Deletes the records SEQ..., or every record of the dead-letter stream.
Without --yes it asks for confirmation on stdin; anything but "y" or "yes"
(an empty or closed stdin included) aborts with exit code 1.`,
	env: []envGroup{envNATS},
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		yes := fs.Bool("yes", false, "do not ask for confirmation")
		return func(ctx context.Context, c *cli, args []string) error {
			seqs, err := parseSeqs(args)
			if err != nil {
				return err
			}
			return withDLQ(ctx, c, func(d *dlq) error { return d.purge(ctx, seqs, *yes) })
		}
	},
}

func parseSeqs(args []string) ([]uint64, error) {
	var out []uint64
	for _, a := range args {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			return nil, usagef("SEQ %q: want a stream sequence number", a)
		}
		out = append(out, n)
	}
	return out, nil
}

// dlq is an open dead-letter stream.
type dlq struct {
	c    *cli
	js   jetstream.JetStream
	topo events.Topology
	st   jetstream.Stream
}

// dlqTimeout bounds each JetStream request.
const dlqTimeout = 10 * time.Second

func withDLQ(ctx context.Context, c *cli, f func(d *dlq) error) error {
	js, topo, closeNATS, err := c.jetStream()
	if err != nil {
		return err
	}
	defer closeNATS()
	sctx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	st, err := js.Stream(sctx, topo.DeadLetter)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", topo.DeadLetter, err)
	}
	return f(&dlq{c: c, js: js, topo: topo, st: st})
}

// Kinds of records besides the worker's (Archiver-Error-Kind).
const kindAdvisory = "max_deliveries_advisory"

// advisoryPrefix starts the subject of a JetStream advisory.
const advisoryPrefix = "$JS.EVENT.ADVISORY."

// maxDeliverAdvisory is JetStream's io.nats.jetstream.advisory.v1.max_deliver.
type maxDeliverAdvisory struct {
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	Timestamp  time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries int       `json:"deliveries"`
}

// record is one dead letter, decoded.
type record struct {
	Sequence         uint64                 `json:"sequence"`
	Subject          string                 `json:"subject"`
	Time             time.Time              `json:"time"`
	Kind             string                 `json:"kind"`
	Error            string                 `json:"error,omitempty"`
	Deliveries       int                    `json:"deliveries,omitempty"`
	OriginalSubject  string                 `json:"original_subject,omitempty"`
	OriginalSequence uint64                 `json:"original_sequence,omitempty"`
	FailedAt         string                 `json:"failed_at,omitempty"`
	DeliveryID       string                 `json:"delivery_id,omitempty"`
	Event            *runevent.RunCompleted `json:"event,omitempty"`
	DecodeError      string                 `json:"decode_error,omitempty"`
	Advisory         *maxDeliverAdvisory    `json:"advisory,omitempty"`
	// Headers and Body are only in "show".
	Headers map[string][]string `json:"headers,omitempty"`
	Body    json.RawMessage     `json:"body,omitempty"`
	BodyRaw string              `json:"body_text,omitempty"`

	raw *jetstream.RawStreamMsg
}

func decodeRecord(m *jetstream.RawStreamMsg) *record {
	h := m.Header
	r := &record{
		Sequence: m.Sequence, Subject: m.Subject, Time: m.Time,
		Kind: h.Get(events.HeaderErrorKind), Error: h.Get(events.HeaderError),
		OriginalSubject: h.Get(events.HeaderOrigSubject), FailedAt: h.Get(events.HeaderFailedAt),
		DeliveryID: h.Get(events.HeaderDelivery), raw: m,
	}
	r.Deliveries, _ = strconv.Atoi(h.Get(events.HeaderDeliveries))
	r.OriginalSequence, _ = strconv.ParseUint(h.Get(events.HeaderOrigSeq), 10, 64)
	if strings.HasPrefix(m.Subject, advisoryPrefix) {
		r.Kind = kindAdvisory
		var a maxDeliverAdvisory
		if err := json.Unmarshal(m.Data, &a); err != nil {
			r.DecodeError = err.Error()
		} else {
			r.Advisory = &a
			r.OriginalSequence, r.Deliveries = a.StreamSeq, a.Deliveries
		}
		return r
	}
	if ev, err := runevent.DecodeRunCompleted(m.Data); err != nil {
		r.DecodeError = err.Error()
	} else {
		r.Event = ev
	}
	return r
}

// records reads every record in sequence order.
func (d *dlq) records(ctx context.Context) ([]*record, error) {
	var out []*record
	for seq := uint64(1); ; {
		m, err := d.get(ctx, seq, true)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, decodeRecord(m))
		seq = m.Sequence + 1
	}
}

// get reads the record at seq or, with next, the first one at or after it.
func (d *dlq) get(ctx context.Context, seq uint64, next bool) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	var opts []jetstream.GetMsgOpt
	if next {
		opts = append(opts, jetstream.WithGetMsgSubject(">"))
	}
	m, err := d.st.GetMsg(ctx, seq, opts...)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("read %s sequence %d: %w", d.topo.DeadLetter, seq, err)
	}
	return m, err
}

func (d *dlq) ls(ctx context.Context, asJSON bool) error {
	recs, err := d.records(ctx)
	if err != nil {
		return err
	}
	c := d.c
	if asJSON {
		if recs == nil {
			recs = []*record{}
		}
		return writeJSON(c.stdout, recs)
	}
	if len(recs) == 0 {
		fmt.Fprintf(c.stdout, "no dead letters in %s\n", d.topo.DeadLetter)
		return nil
	}
	t := newTable(c.stdout, c.color, func(col int, _ string) string {
		if col == 2 {
			return sgrRed
		}
		return sgrNone
	}, "SEQ", "FAILED_AT", "KIND", "REPO", "RUN", "ATTEMPT", "DELIVERIES", "ERROR")
	for _, r := range recs {
		repo, run, attempt := "-", "-", "-"
		if r.Event != nil {
			repo = r.Event.Repository.FullName
			run = strconv.FormatInt(r.Event.WorkflowRun.ID, 10)
			attempt = strconv.Itoa(r.Event.WorkflowRun.RunAttempt)
		}
		errText := r.Error
		switch {
		case r.Advisory != nil:
			errText = fmt.Sprintf("consumer %s gave up on %s sequence %d", r.Advisory.Consumer, r.Advisory.Stream, r.Advisory.StreamSeq)
		case r.Event == nil && r.DecodeError != "":
			repo = "(undecodable)"
		}
		t.row(strconv.FormatUint(r.Sequence, 10), shortTime(r.Time), orDash(r.Kind), repo, run, attempt, idOrDash(int64(r.Deliveries)), truncateText(errText, 100))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "%s in %s\n", plural(len(recs), "dead letter"), d.topo.DeadLetter)
	return nil
}

func (d *dlq) show(ctx context.Context, seq uint64, asJSON bool) error {
	m, err := d.get(ctx, seq, false)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("no dead letter at sequence %d in %s", seq, d.topo.DeadLetter)
	}
	if err != nil {
		return err
	}
	r := decodeRecord(m)
	r.Headers = map[string][]string(m.Header)
	if json.Valid(m.Data) {
		r.Body = m.Data
	} else {
		r.BodyRaw = string(m.Data)
	}
	c := d.c
	if asJSON {
		return writeJSON(c.stdout, r)
	}
	fmt.Fprintf(c.stdout, "Sequence:  %d\nSubject:   %s\nStored at: %s\n", m.Sequence, m.Subject, m.Time.UTC().Format(time.RFC3339))
	if r.Event != nil {
		fmt.Fprintf(c.stdout, "Run:       %s run %d attempt %d (%s)\n", r.Event.Repository.FullName, r.Event.WorkflowRun.ID, r.Event.WorkflowRun.RunAttempt, r.Event.MsgID())
	}
	if r.DecodeError != "" {
		fmt.Fprintf(c.stdout, "Undecodable: %s\n", r.DecodeError)
	}
	fmt.Fprintf(c.stdout, "\nHeaders:\n")
	for _, k := range slices.Sorted(maps.Keys(m.Header)) {
		for _, v := range m.Header[k] {
			fmt.Fprintf(c.stdout, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintf(c.stdout, "\nBody:\n")
	if r.Body != nil {
		var v any
		_ = json.Unmarshal(m.Data, &v)
		return writeJSON(c.stdout, v)
	}
	fmt.Fprintf(c.stdout, "%q\n", r.BodyRaw)
	return nil
}

// replayResult is the outcome of one replay.
type replayResult struct {
	Sequence uint64 `json:"sequence"`
	Subject  string `json:"subject,omitempty"`
	MsgID    string `json:"msg_id,omitempty"`
	Result   string `json:"result"` // replayed, would replay, error
	// StreamSequence is the event's sequence in the run stream.
	StreamSequence uint64 `json:"stream_sequence,omitempty"`
	Duplicate      bool   `json:"duplicate,omitempty"`
	Error          string `json:"error,omitempty"`
}

func (d *dlq) replay(ctx context.Context, seqs []uint64, all, dryRun, asJSON bool) error {
	var recs []*record
	var results []replayResult
	if all {
		var err error
		if recs, err = d.records(ctx); err != nil {
			return err
		}
	} else {
		for _, seq := range seqs {
			m, err := d.get(ctx, seq, false)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				results = append(results, replayResult{Sequence: seq, Result: resultError, Error: fmt.Sprintf("no dead letter at sequence %d", seq)})
				continue
			}
			if err != nil {
				return err
			}
			recs = append(recs, decodeRecord(m))
		}
	}
	for _, r := range recs {
		res := d.replayOne(ctx, r, dryRun)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		results = append(results, res)
	}
	slices.SortFunc(results, func(a, b replayResult) int { return cmp.Compare(a.Sequence, b.Sequence) })
	failed := slices.ContainsFunc(results, func(r replayResult) bool { return r.Result == resultError })
	c := d.c
	if asJSON {
		if results == nil {
			results = []replayResult{}
		}
		if err := writeJSON(c.stdout, results); err != nil {
			return err
		}
	} else {
		if len(results) == 0 {
			fmt.Fprintf(c.stdout, "no dead letters in %s\n", d.topo.DeadLetter)
		}
		for _, r := range results {
			switch r.Result {
			case resultError:
				fmt.Fprintf(c.stdout, "%d: error: %s\n", r.Sequence, r.Error)
			default:
				fmt.Fprintf(c.stdout, "%d: %s to %s as %s", r.Sequence, r.Result, r.Subject, r.MsgID)
				if r.StreamSequence != 0 {
					fmt.Fprintf(c.stdout, " (%s sequence %d", d.topo.Stream, r.StreamSequence)
					if r.Duplicate {
						fmt.Fprint(c.stdout, ", duplicate of an earlier replay")
					}
					fmt.Fprint(c.stdout, ")")
				}
				fmt.Fprintln(c.stdout)
			}
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// headerDropped reports whether a dead-letter header stays behind on
// replay: the DLQ's own headers and JetStream's (Nats-*).
func headerDropped(k string) bool {
	switch k {
	case events.HeaderError, events.HeaderErrorKind, events.HeaderDeliveries,
		events.HeaderOrigSubject, events.HeaderOrigSeq, events.HeaderFailedAt:
		return true
	}
	return strings.HasPrefix(k, "Nats-")
}

// replayOne republishes one record's event and deletes the record (and,
// for an advisory, the stuck original) once the publish is acknowledged.
func (d *dlq) replayOne(ctx context.Context, r *record, dryRun bool) replayResult {
	res := replayResult{Sequence: r.Sequence}
	fail := func(format string, args ...any) replayResult {
		res.Result, res.Error = resultError, fmt.Sprintf(format, args...)
		return res
	}
	var data []byte
	var hdr nats.Header
	var origSeq uint64 // an advisory's stuck message in the run stream
	switch {
	case r.Advisory != nil:
		if r.Advisory.Stream != d.topo.Stream {
			return fail("advisory for stream %s, not %s", r.Advisory.Stream, d.topo.Stream)
		}
		runs, err := d.js.Stream(ctx, d.topo.Stream)
		if err != nil {
			return fail("run stream %s: %v", d.topo.Stream, err)
		}
		orig, err := runs.GetMsg(ctx, r.Advisory.StreamSeq)
		if err != nil {
			return fail("original message %d of %s: %v (purge the advisory if it is gone)", r.Advisory.StreamSeq, d.topo.Stream, err)
		}
		data, hdr, origSeq = orig.Data, orig.Header, orig.Sequence
		res.Subject = orig.Subject
	case r.Event != nil:
		data, hdr = r.raw.Data, r.raw.Header
		res.Subject = cmp.Or(r.OriginalSubject, d.topo.Subjects.Run(r.Event))
	default:
		return fail("undecodable event (%s): inspect it with 'dlq show %d', remove it with 'dlq purge %d'", r.DecodeError, r.Sequence, r.Sequence)
	}
	ev, err := runevent.DecodeRunCompleted(data)
	if err != nil {
		return fail("undecodable event: %v", err)
	}
	res.MsgID = ev.MsgID() + ":replay:" + strconv.FormatUint(r.Sequence, 10)
	if dryRun {
		res.Result = resultWouldReplay
		return res
	}
	msg := nats.NewMsg(res.Subject)
	msg.Data = data
	for k, v := range hdr {
		if !headerDropped(k) {
			msg.Header[k] = v
		}
	}
	pctx, cancel := context.WithTimeout(ctx, events.DefaultPublishTimeout)
	defer cancel()
	ack, err := d.js.PublishMsg(pctx, msg, jetstream.WithMsgID(res.MsgID), jetstream.WithExpectStream(d.topo.Stream))
	if err != nil {
		return fail("publish to %s: %v (the dead letter is kept)", res.Subject, err)
	}
	res.StreamSequence, res.Duplicate = ack.Sequence, ack.Duplicate
	dctx, dcancel := context.WithTimeout(ctx, dlqTimeout)
	defer dcancel()
	if err := d.st.DeleteMsg(dctx, r.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fail("replayed as %s, but deleting the dead letter failed: %v (a second replay is a duplicate)", res.MsgID, err)
	}
	if origSeq != 0 {
		if runs, err := d.js.Stream(dctx, d.topo.Stream); err == nil {
			if err := runs.DeleteMsg(dctx, origSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				fmt.Fprintf(d.c.stderr, "replayed %d, but could not remove the stuck original %s sequence %d: %v\n", r.Sequence, d.topo.Stream, origSeq, err)
			}
		}
	}
	res.Result = resultReplayed
	return res
}

// Results of a replay.
const (
	resultReplayed    = "replayed"
	resultWouldReplay = "would replay"
)

func (d *dlq) purge(ctx context.Context, seqs []uint64, yes bool) error {
	c := d.c
	ictx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	info, err := d.st.Info(ictx)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", d.topo.DeadLetter, err)
	}
	what := "all " + plural(int(info.State.Msgs), "dead letter")
	if len(seqs) > 0 {
		what = fmt.Sprintf("dead letters %s", joinSeqs(seqs))
	} else if info.State.Msgs == 0 {
		fmt.Fprintf(c.stdout, "no dead letters in %s\n", d.topo.DeadLetter)
		return nil
	}
	if !yes {
		fmt.Fprintf(c.stderr, "Delete %s from %s? [y/N] ", what, d.topo.DeadLetter)
		line, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			if !strings.HasSuffix(line, "\n") {
				fmt.Fprintln(c.stderr) // no echoed newline ends the prompt's line
			}
			fmt.Fprintln(c.stderr, "aborted")
			return errReported
		}
	}
	if len(seqs) == 0 {
		if err := d.st.Purge(ictx); err != nil {
			return fmt.Errorf("purge %s: %w", d.topo.DeadLetter, err)
		}
		fmt.Fprintf(c.stdout, "purged %s from %s\n", plural(int(info.State.Msgs), "dead letter"), d.topo.DeadLetter)
		return nil
	}
	failed := false
	for _, seq := range seqs {
		if err := d.st.DeleteMsg(ictx, seq); err != nil {
			fmt.Fprintf(c.stdout, "%d: error: %v\n", seq, err)
			failed = true
			continue
		}
		fmt.Fprintf(c.stdout, "%d: deleted\n", seq)
	}
	if failed {
		return errReported
	}
	return nil
}

func joinSeqs(seqs []uint64) string {
	s := make([]string, len(seqs))
	for i, n := range seqs {
		s[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(s, ", ")
}
