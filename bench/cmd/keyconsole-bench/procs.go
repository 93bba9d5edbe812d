package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process pinned to a CPU list.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// startPinned runs argv under `taskset -c cpus` (taskset execs the program,
// so the child's pid is the program's) with env, logging to logPath.
func startPinned(name, cpus string, env []string, logPath string, argv ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"-c", cpus}, argv...)
	cmd := exec.Command("taskset", args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: lf, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// clockTick is the kernel's USER_HZ, the unit of /proc/PID/stat times: 100
// on Linux for every architecture the suite runs on.
const clockTick = 10 * time.Millisecond

// cpuTime returns the process's CPU time so far (user and system, all
// threads), from /proc/PID/stat, with the kernel's 10 ms resolution.
func (p *proc) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count fields after ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: unreadable /proc stat", p.name)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: short /proc stat", p.name)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: unreadable /proc stat times", p.name)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process with SIGTERM, then SIGKILL after 10 seconds.
func (p *proc) stop() {
	if p == nil {
		return
	}
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.log.Close()
}

// tail returns the end of the process's log.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log.Name())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitHTTP polls url every interval until it answers 200, and returns the
// time from since to the first 200.
func (p *proc) waitHTTP(ctx context.Context, url string, since time.Time, interval, limit time.Duration) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := since.Add(limit)
	for time.Now().Before(deadline) {
		if p.exited() {
			return 0, fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(since), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(interval):
		}
	}
	return 0, fmt.Errorf("%s did not answer %s within %s\n%s", p.name, url, limit, p.tail())
}

// procStatus reads a field of /proc/PID/status in KiB (VmRSS, VmHWM).
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// resetPeakRSS resets the process's VmHWM to its current RSS, so a later
// VmHWM is the peak of what ran in between.
func resetPeakRSS(pid int) error {
	return os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0)
}

// freeAddr returns a free 127.0.0.1 TCP address.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// baseEnv is the environment without KEYCONSOLE_* variables.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYCONSOLE_") && !strings.HasPrefix(kv, "GODEBUG=") && !strings.HasPrefix(kv, "GOMAXPROCS=") {
			out = append(out, kv)
		}
	}
	return out
}

// console is a running keyconsole server.
type console struct {
	*proc
	URL      string
	SFTPAddr string
	DataDir  string
	// ProfileURL serves /debug/pprof/ when the suite takes profiles.
	ProfileURL string
}

// consoleEnv is the environment of a console on dataDir.
func consoleEnv(dataDir, httpAddr, sftpAddr, profileAddr, issuer string, extra map[string]string) []string {
	env := baseEnv()
	vars := map[string]string{
		"KEYCONSOLE_ENV":                     "development",
		"KEYCONSOLE_HTTP_ADDR":               httpAddr,
		"KEYCONSOLE_BASE_URL":                "http://" + httpAddr,
		"KEYCONSOLE_DATA_DIR":                dataDir,
		"KEYCONSOLE_DATABASE_URL":            filepath.Join(dataDir, "keyconsole.db"),
		"KEYCONSOLE_SESSION_KEYS":            sessionKeys,
		"KEYCONSOLE_SFTP_ADDR":               sftpAddr,
		"KEYCONSOLE_LOG_FORMAT":              "json",
		"KEYCONSOLE_LOG_LEVEL":               "info",
		"KEYCONSOLE_METRICS_TOKEN":           metricsBearer,
		"KEYCONSOLE_OIDC_PROVIDERS":          providerID,
		"KEYCONSOLE_OIDC_MOCK_ISSUER":        issuer,
		"KEYCONSOLE_OIDC_MOCK_CLIENT_ID":     idpClientID,
		"KEYCONSOLE_OIDC_MOCK_CLIENT_SECRET": idpClientSecret,
		"KEYCONSOLE_OIDC_MOCK_KIND":          "generic",
		"KEYCONSOLE_OIDC_MOCK_SCOPES":        "openid email profile groups",
		// One address drives every token request, as a gateway would; the
		// per-credential limit still applies.
		"KEYCONSOLE_TOKEN_ADDR_RATE": "inf",
	}
	for k, v := range extra {
		vars[k] = v
	}
	if profileAddr != "" {
		vars["KEYCONSOLE_METRICS_ADDR"] = profileAddr
		vars["KEYCONSOLE_PROFILING"] = "true"
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// startConsole starts `keyconsole serve` on dataDir pinned to cpus, with
// extra setting or overriding environment variables, and waits (up to
// limit) for /healthz.
func startConsole(ctx context.Context, o options, name, dataDir string, sftp bool, issuer string, limit time.Duration, extra map[string]string) (*console, time.Duration, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, 0, err
	}
	sftpAddr := ""
	if sftp {
		if sftpAddr, err = freeAddr(); err != nil {
			return nil, 0, err
		}
	}
	profileAddr := ""
	if o.Profile != "" {
		if profileAddr, err = freeAddr(); err != nil {
			return nil, 0, err
		}
	}
	start := time.Now()
	p, err := startPinned(name, o.ServerCPU, consoleEnv(dataDir, addr, sftpAddr, profileAddr, issuer, extra), filepath.Join(o.Work, name+".log"), o.Bin, "serve")
	if err != nil {
		return nil, 0, err
	}
	c := &console{proc: p, URL: "http://" + addr, SFTPAddr: sftpAddr, DataDir: dataDir}
	if profileAddr != "" {
		c.ProfileURL = "http://" + profileAddr
	}
	took, err := p.waitHTTP(ctx, c.URL+"/healthz", start, time.Millisecond, limit)
	if err != nil {
		p.stop()
		return nil, 0, err
	}
	return c, took, nil
}

// startBaseline starts the bare Echo handler with a body of size bytes.
func startBaseline(ctx context.Context, o options, size int) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startPinned("baseline", o.ServerCPU, baseEnv(), filepath.Join(o.Work, "baseline.log"), o.Self, "baseline", "-addr", addr, "-size", strconv.Itoa(size))
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	if _, err := p.waitHTTP(ctx, url+"/", time.Now(), 5*time.Millisecond, 10*time.Second); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, url, nil
}

// requireTools fails clearly when a program the suite runs is missing.
func requireTools(names ...string) error {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return errors.New("missing programs: " + strings.Join(missing, ", ") + " (scripts/bench.sh installs them with apt-get: wrk sqlite3 util-linux)")
	}
	return nil
}
