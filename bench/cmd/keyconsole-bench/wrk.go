package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed bench.lua
var wrkScript []byte

// wrkResult is what one wrk run printed.
type wrkResult struct {
	Requests      int64   `json:"requests"`
	DurationUS    int64   `json:"duration_us"`
	Bytes         int64   `json:"bytes"`
	ConnectErrors int64   `json:"connect_errors"`
	ReadErrors    int64   `json:"read_errors"`
	WriteErrors   int64   `json:"write_errors"`
	StatusErrors  int64   `json:"status_errors"`
	Timeouts      int64   `json:"timeouts"`
	MeanUS        float64 `json:"mean_us"`
	P50US         int64   `json:"p50_us"`
	P90US         int64   `json:"p90_us"`
	P99US         int64   `json:"p99_us"`
	MaxUS         int64   `json:"max_us"`
	// ServerCPUUS is the CPU time (user and system) the measured server
	// spent during the run, from /proc; 0 when not measured.
	ServerCPUUS float64 `json:"server_cpu_us,omitempty"`
}

// CPUPerRequestUS is the server's CPU time per answered request in µs.
func (r wrkResult) CPUPerRequestUS() float64 {
	if r.Requests == 0 {
		return 0
	}
	return r.ServerCPUUS / float64(r.Requests)
}

// RPS is the throughput in requests per second.
func (r wrkResult) RPS() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

func (r wrkResult) errors() int64 {
	return r.ConnectErrors + r.ReadErrors + r.WriteErrors + r.StatusErrors + r.Timeouts
}

// load is one wrk invocation.
type load struct {
	URL    string
	Conns  int
	Dur    time.Duration
	Creds  string // file of Authorization values: POST form requests
	Body   string
	Cookie string
}

// runWrk runs wrk with one thread pinned to the load CPUs and returns its
// summary; any non-2xx/3xx answer or socket error fails the run.
func runWrk(ctx context.Context, o options, l load) (wrkResult, error) {
	script := filepath.Join(o.Work, "bench.lua")
	if err := os.WriteFile(script, wrkScript, 0o600); err != nil {
		return wrkResult{}, err
	}
	args := []string{"-c", o.LoadCPU, "wrk", "-t1", "-c" + strconv.Itoa(l.Conns), "-d" + strconv.Itoa(int(l.Dur.Seconds())) + "s",
		"--timeout", "10s", "-s", script, l.URL}
	cmd := exec.CommandContext(ctx, "taskset", args...)
	cmd.Env = append(baseEnv(), "BENCH_CREDS="+l.Creds, "BENCH_BODY="+l.Body, "BENCH_COOKIE="+l.Cookie)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w: %s", l.URL, err, errb.String())
	}
	var res wrkResult
	found := false
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "{") {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				return res, fmt.Errorf("wrk output: %w: %s", err, line)
			}
			found = true
		}
	}
	if !found {
		return res, fmt.Errorf("wrk printed no summary: %s", out.String())
	}
	if res.Requests == 0 || res.errors() > 0 {
		return res, fmt.Errorf("wrk %s: %d requests, %d non-2xx/3xx answers, %d socket errors, %d timeouts", l.URL, res.Requests,
			res.StatusErrors, res.ConnectErrors+res.ReadErrors+res.WriteErrors, res.Timeouts)
	}
	return res, nil
}
