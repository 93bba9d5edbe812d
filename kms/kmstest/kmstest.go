// Package kmstest runs a real KMS-compatible server, local-kms, for tests.
//
// Start launches the local-kms binary (from the repository's .bin/, or
// local-kms on PATH; if neither exists it is built with go install into .bin/)
// on a free port, seeded from testdata/kms-seed.yaml with two keys, and stops
// it when the test ends. local-kms listens on every interface, so clients are
// always pointed at 127.0.0.1.
package kmstest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// Version is the local-kms module version installed when the binary is missing.
const Version = "v0.0.0-20260228092603-2a5e92d09ab6"

// Seeded keys and aliases (testdata/kms-seed.yaml), region and account.
const (
	KeyA      = "bc436485-5092-42b8-92a3-0aa8b93536dc"
	KeyB      = "29f2249b-f180-465f-ab31-2c554fe023d1"
	AliasA    = "alias/keyconsole"
	AliasB    = "alias/keyconsole-next"
	Region    = "us-gov-west-1"
	AccountID = "111122223333"
)

// Fake credentials. The secret is 40 characters: shorter ones make SigV4
// panic under GODEBUG=fips140=only (HMAC keys below 112 bits).
const (
	AccessKeyID     = "AKIAKEYCONSOLETEST00"
	SecretAccessKey = "keyconsoleLocalKmsTestSecretAccessKey000"
)

// Server is a running local-kms process.
type Server struct {
	// Endpoint is the URL clients use: http://127.0.0.1:PORT.
	Endpoint string
	// Port is the TCP port it listens on.
	Port int

	bin     string
	seed    string
	dataDir string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	logTail *tail
}

// Start runs local-kms for the duration of the test and sets the process's
// AWS environment (fake credentials, region us-gov-west-1, no shared config
// files, no instance metadata) with tb.Setenv, so it cannot be used from
// parallel tests. The server is stopped at cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	SetAWSEnv(tb)
	root := RepoRoot(tb)
	s := &Server{
		bin:     Binary(tb),
		seed:    filepath.Join(root, "testdata", "kms-seed.yaml"),
		dataDir: tb.TempDir(),
	}
	if _, err := os.Stat(s.seed); err != nil {
		tb.Fatalf("kmstest: seed file: %v", err)
	}
	tb.Cleanup(func() { s.Stop(tb) })
	s.start(tb, 0)
	return s
}

// Stop ends the server process; Restart brings it back on the same port with
// the same data. Stopping a stopped server does nothing.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	if cmd == nil {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		tb.Errorf("kmstest: local-kms (pid %d) did not exit", cmd.Process.Pid)
	}
	s.mu.Lock()
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
}

// Restart starts a stopped server again on its port, keeping its data (key
// states such as disabled survive).
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop(tb)
	s.start(tb, s.Port)
}

// KeyARN returns the ARN local-kms reports for a seeded key id.
func (s *Server) KeyARN(keyID string) string {
	return "arn:aws:kms:" + Region + ":" + AccountID + ":key/" + keyID
}

// Client returns an SDK client for the server with the fake credentials,
// built without reading the environment or shared configuration.
func (s *Server) Client() *awskms.Client {
	return awskms.New(awskms.Options{
		Region:           Region,
		BaseEndpoint:     awssdk.String(s.Endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		RetryMaxAttempts: 1,
	})
}

// DisableKey disables a key, as an operator would during a rotation.
func (s *Server) DisableKey(tb testing.TB, keyID string) {
	tb.Helper()
	if _, err := s.Client().DisableKey(context.Background(), &awskms.DisableKeyInput{KeyId: awssdk.String(keyID)}); err != nil {
		tb.Fatalf("kmstest: disable key %s: %v", keyID, err)
	}
}

// EnableKey enables a key again.
func (s *Server) EnableKey(tb testing.TB, keyID string) {
	tb.Helper()
	if _, err := s.Client().EnableKey(context.Background(), &awskms.EnableKeyInput{KeyId: awssdk.String(keyID)}); err != nil {
		tb.Fatalf("kmstest: enable key %s: %v", keyID, err)
	}
}

// Log returns the last lines local-kms printed, for failure messages.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logTail == nil {
		return ""
	}
	return s.logTail.String()
}

var startedRE = regexp.MustCompile(`Local KMS started on [^\s]*:(\d+)`)

func (s *Server) start(tb testing.TB, port int) {
	tb.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		if lastErr = s.startOnce(port); lastErr == nil {
			return
		}
	}
	tb.Fatalf("kmstest: start local-kms: %v\n%s", lastErr, s.Log())
}

func (s *Server) startOnce(port int) error {
	cmd := exec.Command(s.bin)
	cmd.SysProcAttr = childAttr()
	cmd.Env = append(cleanEnv(),
		"PORT="+strconv.Itoa(port),
		"KMS_REGION="+Region,
		"KMS_ACCOUNT_ID="+AccountID,
		"KMS_SEED_PATH="+s.seed,
		"KMS_DATA_PATH="+s.dataDir,
	)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	logTail := newTail(40)
	portCh := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			logTail.add(line)
			if m := startedRE.FindStringSubmatch(line); m != nil && !sent {
				if p, err := strconv.Atoi(m[1]); err == nil {
					portCh <- p
					sent = true
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	if err := cmd.Start(); err != nil {
		pw.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.logTail = cmd, exited, logTail
	s.mu.Unlock()

	fail := func(err error) error {
		_ = cmd.Process.Kill()
		<-exited
		s.mu.Lock()
		s.cmd, s.exited = nil, nil
		s.mu.Unlock()
		return err
	}
	select {
	case p := <-portCh:
		s.Port = p
		s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(p)
	case <-exited:
		return fail(errors.New("local-kms exited before listening"))
	case <-time.After(30 * time.Second):
		return fail(errors.New("local-kms did not report its port within 30s"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.Client().ListKeys(ctx, &awskms.ListKeysInput{})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fail(fmt.Errorf("local-kms exited: %w", err))
		default:
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("local-kms does not answer: %w", err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SetAWSEnv points the SDK's standard configuration chain at the fake
// credentials and region us-gov-west-1 for the rest of the test, and keeps it
// away from the developer's shared configuration files and from instance
// metadata.
func SetAWSEnv(tb testing.TB) {
	tb.Helper()
	empty := filepath.Join(tb.TempDir(), "aws-empty-config")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		tb.Fatalf("kmstest: %v", err)
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       SecretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  Region,
		"AWS_DEFAULT_REGION":          Region,
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             empty,
		"AWS_SHARED_CREDENTIALS_FILE": empty,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_KMS":        "",
	} {
		tb.Setenv(k, v)
	}
}

// ClosedEndpoint returns an http://127.0.0.1 URL on which nothing listens.
func ClosedEndpoint(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("kmstest: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// RepoRoot returns the directory of the nearest go.mod above the working
// directory (tests run in their package directory).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("kmstest: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("kmstest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of the local-kms binary: <repo>/.bin/local-kms,
// else local-kms on PATH, else it builds <repo>/.bin/local-kms with go
// install (holding a lock so parallel test binaries build it once).
func Binary(tb testing.TB) string {
	tb.Helper()
	binDir := filepath.Join(RepoRoot(tb), ".bin")
	bin := filepath.Join(binDir, "local-kms")
	if isExecutable(bin) {
		return bin
	}
	if p, err := exec.LookPath("local-kms"); err == nil {
		return p
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		tb.Fatalf("kmstest: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(binDir, ".local-kms.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		tb.Fatalf("kmstest: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		tb.Fatalf("kmstest: lock %s: %v", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if isExecutable(bin) {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("kmstest: local-kms is not installed and the go command is not on PATH: %v", err)
	}
	tb.Logf("kmstest: installing local-kms %s into %s", Version, binDir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", "github.com/nsmithuk/local-kms@"+Version)
	cmd.Dir = binDir
	cmd.Env = append(cleanEnv(), "GOBIN="+binDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("kmstest: go install local-kms: %v\n%s", err, out)
	}
	if !isExecutable(bin) {
		tb.Fatalf("kmstest: go install did not produce %s", bin)
	}
	return bin
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

// cleanEnv is the environment for child processes without the FIPS settings
// of the test run: local-kms is a test fixture, not part of the product, and
// its own cryptography is not FIPS-only.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GODEBUG", "GOFIPS140", "PORT":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// tail keeps the last lines of a log.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
