package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/artifact-archiver/artifact-archiver/internal/testkit/ghsim"
)

// TestMain lets the test binary act as the ghsim command (GHSIM_RUN_MAIN=1),
// so the process tests run the real main: flags, signals and exit code.
func TestMain(m *testing.M) {
	if os.Getenv("GHSIM_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const scenario = `{
  "tokens": ["ghp_process"],
  "repos": [{"installation_id": 3, "owner": "o", "name": "r",
    "runs": [{"id": 77, "artifacts": [{"name": "dist", "size": 65536, "seed": 9}]}]}]
}`

func TestProcess(t *testing.T) {
	dir := t.TempDir()
	scPath := filepath.Join(dir, "scenario.json")
	if err := os.WriteFile(scPath, []byte(scenario), 0o600); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(dir, "state.json")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-scenario", scPath)
	cmd.Env = append(os.Environ(), "GHSIM_RUN_MAIN=1", "GHSIM_STATE_FILE="+statePath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			urls <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
		exited <- cmd.Wait()
	}()
	var api string
	select {
	case api = <-urls:
	case err := <-exited:
		t.Fatalf("ghsim exited before printing its URL: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no URL within 30 s\n%s", stderr.String())
	}
	if !strings.HasPrefix(api, "http://127.0.0.1:") || !strings.HasSuffix(api, "/") {
		t.Fatalf("printed %q, want the API base URL", api)
	}

	// The state file is written before the URL is printed.
	b, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	var st ghsim.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.APIURL != api || len(st.Artifacts) != 1 || st.Artifacts[0].RunID != 77 {
		t.Fatalf("state = %+v", st)
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", fmt.Sprintf("%srepos/o/r/actions/runs/77/artifacts", api), nil)
	req.Header.Set("Authorization", "token ghp_process")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		TotalCount int `json:"total_count"`
		Artifacts  []struct {
			Digest string `json:"digest"`
		} `json:"artifacts"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || list.TotalCount != 1 || list.Artifacts[0].Digest != "sha256:"+ghsim.NewContent(9, 65536).SHA256() {
		t.Fatalf("list from the process: %+v, %v", list, err)
	}
	sresp, err := hc.Get(api + "_ghsim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats ghsim.Stats
	err = json.NewDecoder(sresp.Body).Decode(&stats)
	sresp.Body.Close()
	if err != nil || stats.Count(ghsim.RouteList, 200) != 1 {
		t.Fatalf("admin stats: %+v, %v", stats.Requests, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ghsim did not exit within 30 s of SIGTERM")
	}
}

func TestRunFlags(t *testing.T) {
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"-h"}, func(string) string { return "" }, io.Discard, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	for _, name := range []string{"-scenario", "-api-addr", "-blob-addr", "-blob-host", "-state-file", "-admin"} {
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("-h output lacks %s:\n%s", name, stderr.String())
		}
	}
	getenv := func(k string) string {
		return map[string]string{"GHSIM_SCENARIO": filepath.Join(t.TempDir(), "missing.json")}[k]
	}
	if err := run(t.Context(), nil, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing scenario from the environment: %v", err)
	}
}
