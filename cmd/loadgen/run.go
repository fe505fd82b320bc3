package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/artifact-archiver/artifact-archiver/pkg/events"
)

// run is the whole command; the test calls it directly. It sets up
// JetStream and the webhook, then runs the phases -mode selects.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	tmp, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	natsURL, natsPID, stopNATS, err := startNATS(o, tmp)
	if err != nil {
		return err
	}
	defer stopNATS()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, js, topo, err := connectJetStream(ctx, natsURL, log)
	if err != nil {
		return err
	}
	defer nc.Close()

	target := o.target
	if target == "" && o.mode != "raw" {
		srv, err := startWebhook(ctx, o, natsURL)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Stop(sctx)
		}()
		target = "http://" + srv.Addr() + "/webhook"
	}

	gen, err := newGenerator(o.secret)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "loadgen: %d connections, %s measured after %s warm-up, GOMAXPROCS=%d, %d CPUs, %s\n",
		o.conns, o.duration, o.warmup, runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(stdout, "  nats: %s (%s)\n  body: %d bytes workflow_run delivery, event: %d bytes, client: %s\n",
		natsURL, natsKind(o), len(gen.template), len(gen.event), o.client)
	p := &phases{o: o, js: js, topo: topo, gen: gen, natsPID: natsPID, target: target, out: stdout}
	return p.run(ctx)
}

// phases runs the measured phases against one JetStream and one webhook,
// and prints each result as it ends.
type phases struct {
	o       options
	js      jetstream.JetStream
	topo    events.Topology
	gen     *generator
	natsPID int    // the nats-server process we started, or 0
	target  string // the webhook URL
	out     io.Writer

	raws []phaseResult
}

// run runs raw, webhook, raw (-mode both: the raw rate is the mean of both
// raw phases, and the ratio webhook/raw is printed), or the one phase -mode
// names.
func (p *phases) run(ctx context.Context) error {
	if p.o.mode != "webhook" {
		if err := p.raw(ctx); err != nil {
			return err
		}
	}
	var hook phaseResult
	if p.o.mode != "raw" {
		var err error
		if hook, err = p.webhook(ctx); err != nil {
			return err
		}
	}
	if p.o.mode == "both" {
		if err := p.raw(ctx); err != nil {
			return err
		}
		var sum float64
		for _, r := range p.raws {
			sum += r.rate()
		}
		raw := sum / float64(len(p.raws))
		fmt.Fprintf(p.out, "ratio webhook/raw = %.2f (raw mean %.0f/s of %d runs; target >= 0.50), webhook p99 %s (target < 25ms)\n",
			hook.rate()/raw, raw, len(p.raws), ms(hook.pct(99)))
	}
	return nil
}

// raw runs one raw JetStream publish phase on an empty stream.
func (p *phases) raw(ctx context.Context) error {
	purge(ctx, p.js, p.topo)
	r, err := runRaw(ctx, p.o, p.js, p.topo, p.gen, p.natsPID)
	if err != nil {
		return err
	}
	p.raws = append(p.raws, r)
	fmt.Fprintln(p.out, r.String("raw JetStream sync publish"))
	return nil
}

// webhook runs the webhook phase on an empty stream, with a CPU profile if
// -cpuprofile is set. When we started the webhook or JetStream, it checks
// that the stream holds one message per accepted delivery.
func (p *phases) webhook(ctx context.Context) (phaseResult, error) {
	purge(ctx, p.js, p.topo)
	if p.o.cpuProfile != "" {
		f, err := os.Create(p.o.cpuProfile)
		if err != nil {
			return phaseResult{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return phaseResult{}, err
		}
	}
	hook, err := runWebhook(ctx, p.o, p.target, p.gen, p.natsPID)
	if p.o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return hook, err
	}
	fmt.Fprintln(p.out, hook.String("webhook deliveries (202 after ack)"))
	if p.o.natsURL == "" || p.o.target == "" {
		stored, err := streamMsgs(ctx, p.js, p.topo)
		if err != nil {
			return hook, err
		}
		fmt.Fprintf(p.out, "%34s stream holds %d messages for %d deliveries accepted as new (warm-up and tail included; %d duplicates measured)\n", "", stored, hook.total, hook.duplicates)
		if stored != uint64(hook.total) {
			return hook, fmt.Errorf("stream holds %d messages but %d deliveries were accepted", stored, hook.total)
		}
	}
	return hook, nil
}
