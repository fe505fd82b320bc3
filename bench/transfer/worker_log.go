package main

import (
	"bytes"
	"encoding/json"
	"sync"
	"time"
)

// workerLog watches the worker's JSON log lines.
type workerLog struct {
	mu       sync.Mutex
	partial  []byte
	running  chan string
	transfer time.Duration
	warnings int
	warnLog  []string // the first few WARN/ERROR lines
}

func (l *workerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *workerLog) line(b []byte) {
	var e struct {
		Level       string `json:"level"`
		Msg         string `json:"msg"`
		MetricsAddr string `json:"metrics_addr"`
		Duration    int64  `json:"duration"`
	}
	if json.Unmarshal(b, &e) != nil {
		return
	}
	switch {
	case e.Msg == "worker running":
		select {
		case l.running <- e.MetricsAddr:
		default:
		}
	case e.Msg == "artifact archived":
		l.transfer = time.Duration(e.Duration)
	}
	if e.Level == "WARN" || e.Level == "ERROR" {
		l.warnings++
		if len(l.warnLog) < 5 {
			l.warnLog = append(l.warnLog, string(b))
		}
	}
}

func (l *workerLog) result() (time.Duration, int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.transfer, l.warnings, l.warnLog
}
