package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/benchkit"
)

// attack holds one slow connection open until ctx ends, opening it again
// whenever the webhook answers or closes it.
func (m *measurement) attack(ctx context.Context, i int) {
	head := fmt.Sprintf("POST /webhook HTTP/1.1\r\nHost: %s\r\nX-GitHub-Event: workflow_run\r\nX-GitHub-Delivery: slow-%d\r\n"+
		"Content-Type: application/json\r\nX-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n{",
		m.addr, i, strings.Repeat("0", 64), m.opt.contentLength)
	var d net.Dialer
	for ctx.Err() == nil {
		conn, err := d.DialContext(ctx, "tcp", m.addr)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.count("dial error")
			if !benchkit.Sleep(ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		if _, err := io.WriteString(conn, head); err != nil {
			conn.Close()
			m.count("write error")
			continue
		}
		m.opened.Add(1)
		m.open.Add(1)
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		status, _ := bufio.NewReader(conn).ReadString('\n')
		stop()
		conn.Close()
		m.open.Add(-1)
		if ctx.Err() != nil {
			return
		}
		if f := strings.Fields(status); len(f) >= 2 {
			m.count(f[1])
		} else {
			m.count("closed")
		}
	}
}

// count records one answer of the webhook to a slow connection.
func (m *measurement) count(what string) {
	v, _ := m.answered.LoadOrStore(what, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}
