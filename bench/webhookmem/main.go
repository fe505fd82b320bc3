// Command webhookmem measures the webhook's memory under slow
// unauthenticated connections (issue 11), while valid deliveries go on.
//
// It builds cmd/webhook (or takes -webhook-bin, e.g. a binary of an older
// commit), starts a nats-server process with JetStream and the webhook as a
// separate process with its production defaults, and waits until /readyz
// answers 200. Then:
//
//   - it opens -conns connections that each send the headers of a
//     workflow_run delivery with a bogus X-Hub-Signature-256 and
//     Content-Length -content-length, then one byte, and hold. A
//     connection the webhook answers or closes (408 after the body
//     timeout, 503) is opened again at once, so that -conns stay open for
//     the whole attack;
//   - once they are all open, it sends valid signed deliveries, one at a
//     time with -interval between them, on a keep-alive connection for
//     -hold, recording each answer and its latency;
//   - it samples the webhook's VmRSS from /proc/<pid>/status every 50 ms
//     and reads its VmHWM (peak RSS) at the end. If VmRSS passes
//     -rss-limit the webhook is killed and the run reported as aborted,
//     so that a baseline without the fix cannot take the machine down.
//
// The result is one Markdown table row on stdout; progress goes to stderr.
//
//	go run ./bench/webhookmem -label after
//	go run ./bench/webhookmem -label before -webhook-bin /tmp/webhook-old
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "webhookmem:", err)
		os.Exit(1)
	}
}
