package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
)

const (
	secret = "webhookmem-secret"
	mib    = 1 << 20
)

// run is the whole command; the test calls it directly. It starts
// nats-server and the webhook, measures one attack and prints its row.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	opt, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logger := log.New(stderr, "webhookmem: ", log.Ltime)
	if err := raiseFileLimit(uint64(opt.conns) + 256); err != nil {
		return err
	}
	if opt.root == "" && (opt.webhookBin == "" || opt.natsBin == "") {
		if opt.root, err = benchkit.RepoRoot(); err != nil {
			return fmt.Errorf("%w: use -repo", err)
		}
	}
	if opt.natsBin == "" {
		if opt.natsBin, err = benchkit.FindBinary(opt.root, "nats-server", ""); err != nil {
			return fmt.Errorf("%w (make tools builds it): use -nats-bin", err)
		}
	}
	dir, err := os.MkdirTemp("", "webhookmem-")
	if err != nil {
		return err
	}
	defer func() {
		if opt.keep {
			logger.Printf("kept %s", dir)
		} else if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if opt.webhookBin == "" {
		opt.webhookBin = filepath.Join(dir, "webhook")
		logger.Printf("building %s/cmd/webhook", opt.root)
		if err := buildWebhook(ctx, opt.root, opt.webhookBin, stderr); err != nil {
			return err
		}
	}

	nats, natsURL, err := benchkit.StartNATSServer(opt.natsBin, filepath.Join(dir, "jetstream"), filepath.Join(dir, "nats-server.log"))
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	defer nats.Stop(syscall.SIGTERM, 5*time.Second)
	hook, addr, err := startWebhook(ctx, opt.webhookBin, natsURL, dir)
	if err != nil {
		return err
	}
	defer hook.Stop(syscall.SIGTERM, 25*time.Second)

	m := &measurement{opt: opt, addr: addr, pid: hook.Pid(), log: logger}
	if err := m.run(ctx, hook); err != nil {
		return err
	}
	m.report(stdout)
	if !opt.keep {
		logger.Printf("webhook log: %d lines (use -keep to look at them)", hook.LogLines())
	}
	return nil
}

// raiseFileLimit raises the soft open-file limit to the hard one (the
// webhook inherits it) and checks that it allows need descriptors.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("setrlimit: %w", err)
		}
	}
	if lim.Cur < need {
		return fmt.Errorf("open-file limit %d is below the %d this run needs: raise the hard limit (ulimit -Hn) or lower -conns", lim.Cur, need)
	}
	return nil
}

// buildWebhook builds root's cmd/webhook into bin, with the compiler's
// output on out.
func buildWebhook(ctx context.Context, root, bin string, out io.Writer) error {
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/webhook")
	build.Dir, build.Stdout, build.Stderr = root, out, out
	if err := build.Run(); err != nil {
		return fmt.Errorf("build cmd/webhook: %w", err)
	}
	return nil
}

// startWebhook starts the webhook binary bin with its production defaults
// on a free port, against natsURL, and waits until /readyz answers 200. It
// returns the process and its listen address.
func startWebhook(ctx context.Context, bin, natsURL, dir string) (*benchkit.Process, string, error) {
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "ARCHIVER_") || strings.HasPrefix(kv, "NATS_") || strings.HasPrefix(kv, "GITHUB_")
	})
	env = append(env, "GITHUB_WEBHOOK_SECRET="+secret, "NATS_URL="+natsURL, "ARCHIVER_LISTEN_ADDR="+addr)
	hook, err := benchkit.StartProcess(bin, nil, env, filepath.Join(dir, "webhook.log"), nil)
	if err != nil {
		return nil, "", fmt.Errorf("webhook: %w", err)
	}
	if err := waitReady(ctx, "http://"+addr+"/readyz", hook); err != nil {
		hook.Stop(syscall.SIGTERM, 25*time.Second)
		return nil, "", err
	}
	return hook, addr, nil
}

// waitReady polls url until it answers 200, for at most 30 s.
func waitReady(ctx context.Context, url string, hook *benchkit.Process) error {
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if hook.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("webhook not ready after 30s (%s): log:\n%s", hook.State(), hook.LogTail())
		}
		if !benchkit.Sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}
