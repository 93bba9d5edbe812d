package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// SessionKeys is the fixed KEYCONSOLE_SESSION_KEYS every harness console runs
// with (48 characters; at least 32 are required).
const SessionKeys = "e2e-session-key-0123456789abcdefghijklmnopqrstuv"

// DefaultOperatorEmail is the platform operator configured by default
// (KEYCONSOLE_OPERATORS=mock:<this>); OperatorUser signs in with it.
const DefaultOperatorEmail = "ops@platform.example"

// startTimeout bounds how long a console may take to answer /healthz.
const startTimeout = 30 * time.Second

// Options choose how a console is started.
type Options struct {
	// Dialect is the database: models.SQLite (the default, a file in a temp
	// dir) or models.Postgres (a fresh database, dropped after the test).
	Dialect models.Dialect
	// Env adds or overrides KEYCONSOLE_* (or any) variables of the server and
	// of CLI commands run through the console. An empty value sets the
	// variable to the empty string.
	Env map[string]string
	// SFTP gives the SFTP server a free 127.0.0.1 port (Console.SFTPAddr);
	// otherwise KEYCONSOLE_SFTP_ADDR is empty and SFTP is off.
	SFTP bool
	// OperatorEmail is the platform operator's e-mail at the mock provider;
	// DefaultOperatorEmail when empty.
	OperatorEmail string
	// SQLitePath puts the SQLite database at this path (say, on a small
	// file system the test fills) instead of in a temporary directory.
	SQLitePath string
}

// Console is one running keyconsole server (a child process) with its own
// data directory, database and OIDC provider. Its helpers report failures to
// the test that started it: from a subtest, use NewBrowser(t, c) and
// NewClient(t, c.URL) with the subtest's t.
type Console struct {
	// URL is the base URL, http://127.0.0.1:PORT (no trailing slash).
	URL string
	// Addr is the HTTP listen address, 127.0.0.1:PORT.
	Addr string
	// SFTPAddr is the SFTP listen address, or "" when SFTP is off.
	SFTPAddr string
	// DataDir is KEYCONSOLE_DATA_DIR.
	DataDir string
	// DatabaseURL is KEYCONSOLE_DATABASE_URL (a file path for SQLite).
	DatabaseURL string
	// Dialect is the database engine.
	Dialect models.Dialect
	// IdP is the OIDC provider the console signs users in with.
	IdP *IdP
	// OperatorEmail is the configured platform operator's e-mail.
	OperatorEmail string

	t    testing.TB
	bin  string
	env  []string
	logs *syncBuffer

	mu     sync.Mutex
	db     *models.DB
	cmd    *exec.Cmd
	done   chan struct{}
	exit   int
	starts int
}

// Start builds (once) and starts a console for the test, waits until
// /healthz answers, and stops it when the test ends.
func Start(t testing.TB, opts Options) *Console {
	t.Helper()
	bin := Binary(t)
	if opts.Dialect == "" {
		opts.Dialect = models.SQLite
	}
	if opts.OperatorEmail == "" {
		opts.OperatorEmail = DefaultOperatorEmail
	}
	c := &Console{
		t: t, bin: bin, logs: &syncBuffer{},
		Dialect: opts.Dialect, OperatorEmail: opts.OperatorEmail,
		DataDir: t.TempDir(),
	}
	if opts.Dialect == models.Postgres {
		requirePostgres(t)
	}
	c.DatabaseURL = opts.SQLitePath
	if opts.Dialect != models.SQLite || c.DatabaseURL == "" {
		c.DatabaseURL = modelstest.NewURL(t, opts.Dialect)
	}
	c.Addr = freeAddr(t)
	c.URL = "http://" + c.Addr
	if opts.SFTP {
		c.SFTPAddr = freeAddr(t)
	}
	c.IdP = StartIdP(t)
	cfg := c.IdP.Config()
	vars := map[string]string{
		"KEYCONSOLE_ENV":                     "development",
		"KEYCONSOLE_HTTP_ADDR":               c.Addr,
		"KEYCONSOLE_BASE_URL":                c.URL,
		"KEYCONSOLE_DATA_DIR":                c.DataDir,
		"KEYCONSOLE_DATABASE_URL":            c.DatabaseURL,
		"KEYCONSOLE_SESSION_KEYS":            SessionKeys,
		"KEYCONSOLE_SFTP_ADDR":               c.SFTPAddr,
		"KEYCONSOLE_LOG_FORMAT":              "json",
		"KEYCONSOLE_LOG_LEVEL":               "debug",
		"KEYCONSOLE_OIDC_PROVIDERS":          ProviderID,
		"KEYCONSOLE_OIDC_MOCK_ISSUER":        cfg.Issuer,
		"KEYCONSOLE_OIDC_MOCK_CLIENT_ID":     cfg.ClientID,
		"KEYCONSOLE_OIDC_MOCK_CLIENT_SECRET": cfg.ClientSecret,
		"KEYCONSOLE_OIDC_MOCK_KIND":          "generic",
		"KEYCONSOLE_OIDC_MOCK_LABEL":         "Mock IdP",
		"KEYCONSOLE_OIDC_MOCK_SCOPES":        ProviderScopes,
		"KEYCONSOLE_OPERATORS":               ProviderID + ":" + opts.OperatorEmail,
	}
	for k, v := range opts.Env {
		vars[k] = v
	}
	c.env = cleanEnv(vars)
	t.Cleanup(func() {
		c.stop(false)
		if t.Failed() {
			t.Logf("keyconsole output (%s):\n%s", c.URL, tail(c.Logs(), 12000))
		}
	})
	c.start()
	return c
}

// Env returns the environment the server runs with (the inherited
// environment without KEYCONSOLE_* variables, plus the console's own), for
// running other commands against the same data.
func (c *Console) Env() []string { return append([]string(nil), c.env...) }

// Logs returns everything the server wrote to stdout and stderr so far,
// across restarts.
func (c *Console) Logs() string { return c.logs.String() }

// Queue makes u the next user the provider signs in.
func (c *Console) Queue(u User) { c.IdP.QueueUser(u) }

// Running reports whether the server process is alive.
func (c *Console) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// ExitCode is the last server process's exit code, or -1 while it runs or
// when it died from a signal.
func (c *Console) ExitCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exit
}

// Stop ends the server with SIGTERM (a graceful shutdown) and waits for it;
// a server still running after 15 s is killed and the test fails.
func (c *Console) Stop() {
	c.t.Helper()
	if !c.stop(false) {
		c.t.Errorf("harness: keyconsole did not stop within 15s of SIGTERM; killed")
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (c *Console) Kill() {
	c.t.Helper()
	c.stop(true)
}

// Signal sends sig to the running server and returns at once (see
// WaitExit).
func (c *Console) Signal(sig os.Signal) {
	c.t.Helper()
	c.mu.Lock()
	cmd := c.cmd
	c.mu.Unlock()
	if cmd == nil {
		c.t.Fatalf("harness: keyconsole is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("harness: signal keyconsole: %v", err)
	}
}

// WaitExit waits until the server process has ended, at most timeout,
// and reports whether it did.
func (c *Console) WaitExit(timeout time.Duration) bool {
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Restart stops the server (if it runs) and starts it again on the same
// address, data directory, database and provider.
func (c *Console) Restart() {
	c.t.Helper()
	c.Stop()
	c.start()
}

func (c *Console) start() {
	c.t.Helper()
	cmd := exec.Command(c.bin, "serve")
	cmd.Env = c.env
	cmd.Dir = c.DataDir
	fmt.Fprintf(c.logs, "--- harness: keyconsole serve (start %d) ---\n", c.starts+1)
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("harness: start keyconsole: %v", err)
	}
	done := make(chan struct{})
	c.mu.Lock()
	c.cmd, c.done, c.exit = cmd, done, -1
	c.starts++
	c.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		c.mu.Lock()
		c.exit = cmd.ProcessState.ExitCode()
		c.mu.Unlock()
		close(done)
	}()
	if err := c.waitHealthy(done); err != nil {
		c.stop(true)
		c.t.Fatalf("harness: %v\nkeyconsole output:\n%s", err, tail(c.Logs(), 12000))
	}
}

func (c *Console) waitHealthy(done chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("keyconsole serve exited with code %d before answering /healthz", c.ExitCode())
		default:
		}
		resp, err := client.Get(c.URL + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("keyconsole did not answer /healthz within %s", startTimeout)
}

// stop ends the process; it reports false if SIGTERM was not enough.
func (c *Console) stop(kill bool) bool {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	if cmd == nil || done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	if kill {
		_ = cmd.Process.Kill()
		<-done
		return true
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return true
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return false
	}
}

// Result is the outcome of one CLI command.
type Result struct {
	Stdout, Stderr string
	// Code is the exit code (-1 if the command was killed).
	Code int
}

// CLI runs `keyconsole args...` with the console's environment (same data
// directory and database) and returns what it printed and its exit code.
func (c *Console) CLI(args ...string) Result {
	c.t.Helper()
	return runBinary(c.t, c.bin, c.env, args...)
}

// MustCLI runs a CLI command and fails the test unless it exits 0; it
// returns the command's stdout.
func (c *Console) MustCLI(args ...string) string {
	c.t.Helper()
	r := c.CLI(args...)
	if r.Code != 0 {
		c.t.Fatalf("harness: keyconsole %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Exec runs the keyconsole binary with only the given KEYCONSOLE_* variables
// (the inherited environment's KEYCONSOLE_* variables are removed) and
// returns what it printed and its exit code. A command still running after
// 20 s is killed.
func Exec(t testing.TB, env map[string]string, args ...string) Result {
	t.Helper()
	return runBinary(t, Binary(t), cleanEnv(env), args...)
}

func runBinary(t testing.TB, bin string, env []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("harness: run keyconsole %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Errorf("harness: keyconsole %s still running after 20s; killed", strings.Join(args, " "))
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
}

// cleanEnv is the inherited environment without KEYCONSOLE_* variables, plus vars.
func cleanEnv(vars map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYCONSOLE_") {
			out = append(out, kv)
		}
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// requirePostgres fails the test, naming what to install, when the
// PostgreSQL server the tests create databases on does not answer.
func requirePostgres(t testing.TB) {
	t.Helper()
	admin := modelstest.PostgresAdminURL()
	host := "127.0.0.1:5432"
	if u, err := url.Parse(admin); err == nil && u.Host != "" {
		host = u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "5432")
		}
	}
	conn, err := net.DialTimeout("tcp", host, 3*time.Second)
	if err != nil {
		t.Fatalf("harness: PostgreSQL is required for this end-to-end test and does not answer at %s: install it with `apt-get install -y postgresql` and start it (or set KEYCONSOLE_TEST_POSTGRES_URL): %v", host, err)
	}
	_ = conn.Close()
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: free port: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// DB returns a connection to the console's database (migrated by the
// server) for assertions; it is opened on first use and closed when the
// test ends.
func (c *Console) DB() *models.DB {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db != nil {
		return c.db
	}
	db, err := models.Open(context.Background(), models.DBConfig{URL: c.DatabaseURL, MaxOpenConns: 2})
	if err != nil {
		c.t.Fatalf("harness: open database: %v", err)
	}
	c.t.Cleanup(func() { _ = db.Close() })
	c.db = db
	return db
}

// AuditEvents returns every audit event with the given action, in any
// agency's chain, oldest first.
func (c *Console) AuditEvents(action string) []models.AuditEvent {
	c.t.Helper()
	db := c.DB()
	var evs []models.AuditEvent
	if err := db.Gorm.Where("action = ?", action).Order("id").Find(&evs).Error; err != nil {
		c.t.Fatalf("harness: read audit events %s: %v", action, err)
	}
	return evs
}

// DataFile is a path inside the console's data directory.
func (c *Console) DataFile(name string) string { return filepath.Join(c.DataDir, name) }

// syncBuffer is a bytes.Buffer safe for the process's concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
