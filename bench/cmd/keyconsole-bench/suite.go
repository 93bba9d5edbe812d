package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// options are the flags of `keyconsole-bench run`.
type options struct {
	Bin, Self, Out, Work, Notes string
	Runs                        int
	Duration                    time.Duration
	ServerCPU, LoadCPU          string
	Only                        string
	Reseed                      bool
	Tag, Keyrings               string
	Profile                     string
}

// suite is one run of the benchmark suite.
type suite struct {
	o           options
	out         io.Writer
	seed        seedInfo
	issuer      string
	big, small  *console
	cookie      string
	rows        []row
	chainVerify time.Duration
	firstView   time.Duration
	errs        []string
}

func (s *suite) logf(format string, args ...any) {
	fmt.Fprintf(s.out, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (s *suite) add(r row) { s.rows = append(s.rows, r) }

// metric reads one sample of the big console's /metrics.
func (s *suite) metric(ctx context.Context, series string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.big.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsBearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metrics: no %s", series)
}

// serverShare reads, from the big console's request-duration histogram,
// how many requests to route have completed and how many of them within
// the bucket le (seconds, as /metrics prints it).
func (s *suite) serverShare(ctx context.Context, route, le string) (within, total float64, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.big.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsBearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	r := `route="` + route + `"`
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, r) {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		switch {
		case strings.HasPrefix(line, "keyconsole_http_request_duration_seconds_bucket{") && strings.Contains(line, `le="`+le+`"`):
			within += v
		case strings.HasPrefix(line, "keyconsole_http_request_duration_seconds_count{"):
			total += v
		}
	}
	return within, total, sc.Err()
}

// serverWindow measures, around f, the share of route's requests the
// server itself answered within le seconds (handler time, without the time a
// request waits for the CPU before the server reads it).
func (s *suite) serverWindow(ctx context.Context, route, le string, f func() error) (float64, error) {
	w0, t0, err := s.serverShare(ctx, route, le)
	if err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	w1, t1, err := s.serverShare(ctx, route, le)
	if err != nil {
		return 0, err
	}
	if t1 <= t0 {
		return 0, fmt.Errorf("metrics: no %s requests counted", route)
	}
	return (w1 - w0) / (t1 - t0), nil
}

func (s *suite) wants(name string) bool {
	if s.o.Only == "" {
		return true
	}
	for _, n := range strings.Split(s.o.Only, ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

func runSuite(ctx context.Context, o options, stdout, _ io.Writer) error {
	if err := requireTools("taskset", "wrk", "sqlite3", "go"); err != nil {
		return err
	}
	var err error
	if o.Bin, err = filepath.Abs(o.Bin); err != nil {
		return err
	}
	if _, err := os.Stat(o.Bin); err != nil {
		return fmt.Errorf("keyconsole binary: %w (build it first: go build -o %s ./cmd/keyconsole)", err, o.Bin)
	}
	if o.Self == "" {
		if o.Self, err = os.Executable(); err != nil {
			return err
		}
	}
	if o.Work == "" {
		o.Work = filepath.Join(os.TempDir(), "keyconsole-bench")
	}
	if err := os.MkdirAll(o.Work, 0o700); err != nil {
		return err
	}
	s := &suite{o: o, out: stdout}
	res := results{Date: time.Now().UTC().Format(time.RFC3339), Runs: o.Runs, Duration: o.Duration.String(), GoVersion: runtime.Version(),
		Cores: onlineCPUs(), CPU: cpuModel(), Commit: gitCommit(), LoadBefore: loadAvg(), Affinity: affinity()}
	res.Pinning = fmt.Sprintf("servers under test, the bare baseline handler and sqlite3 pinned with `taskset -c %s`; wrk (1 thread), the SSH clients and this harness with `taskset -c %s`",
		o.ServerCPU, o.LoadCPU)
	s.logf("load average before: %s", res.LoadBefore)

	// Seeding and the data servers, unless only the start-up or webhook
	// figures were asked for.
	needData := s.wants("token") || s.wants("list") || s.wants("dashboard") || s.wants("audit") || s.wants("export") || s.wants("sftp")
	m, err := startIdP()
	if err != nil {
		return fmt.Errorf("mock OIDC provider: %w", err)
	}
	defer func() { _ = m.Shutdown() }()
	s.issuer = m.Issuer()
	if needData {
		if s.seed, err = seedAll(ctx, filepath.Join(o.Work, "data"), o.Reseed, s.logf); err != nil {
			return err
		}
		res.Seed = &s.seed
		s.logf("starting the consoles")
		if s.big, _, err = startConsole(ctx, o, "console-big", s.seed.BigDir, true, s.issuer, time.Minute, nil); err != nil {
			return err
		}
		defer func() { s.big.stop() }()
		if s.small, _, err = startConsole(ctx, o, "console-small", s.seed.SmallDir, true, s.issuer, time.Minute, nil); err != nil {
			return err
		}
		defer s.small.stop()
		// The token endpoint answers 503 until its keys are loaded.
		if _, err := s.big.waitHTTP(ctx, s.big.URL+"/.well-known/jwks.json", time.Now(), 50*time.Millisecond, time.Minute); err != nil {
			return err
		}
		if s.cookie, err = signIn(m, s.big.URL); err != nil {
			return fmt.Errorf("sign in: %w", err)
		}
	}
	scenarios := []struct {
		name string
		f    func(context.Context) error
	}{
		{"token", s.tokenScenario},
		{"list", s.listScenario},
		{"dashboard", s.dashboardScenario},
		{"audit", s.auditScenario},
		{"export", s.exportScenario},
		{"sftp", s.sftpScenario},
		{"webhooks", s.webhooksScenario},
		{"startup", s.startupScenario},
	}
	for _, sc := range scenarios {
		if !s.wants(sc.name) {
			continue
		}
		s.logf("scenario %s", sc.name)
		if err := sc.f(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.logf("  FAILED: %v", err)
			s.errs = append(s.errs, sc.name+": "+err.Error())
		}
	}
	res.LoadAfter = loadAvg()
	res.Rows = s.rows
	res.Errors = s.errs
	if b, err := os.ReadFile(o.Notes); err == nil {
		res.Notes = string(b)
	}
	md, js, err := res.write(o.Out, o.Tag)
	if err != nil {
		return err
	}
	s.logf("load average after: %s", res.LoadAfter)
	s.logf("wrote %s and %s", md, js)
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, res.table())
	if len(s.errs) > 0 {
		return fmt.Errorf("%d scenario(s) failed to run: %s", len(s.errs), strings.Join(s.errs, "; "))
	}
	return nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

// onlineCPUs counts the machine's processors (runtime.NumCPU only sees the
// harness's own affinity).
func onlineCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "processor") {
			n++
		}
	}
	return max(n, 1)
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

func affinity() string {
	out, err := exec.Command("taskset", "-cp", strconv.Itoa(os.Getpid())).Output()
	if err != nil {
		return "unknown"
	}
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	return strings.TrimSpace(f[len(f)-1])
}
