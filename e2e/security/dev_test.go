package security

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"keyconsole/e2e/harness"
)

// lockedLog collects a child process's output.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// devConsole is a running `keyconsole dev` (built-in development provider).
type devConsole struct {
	url  string
	logs *lockedLog
}

// freePort returns a 127.0.0.1 address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDev runs `keyconsole dev` on 127.0.0.1 with a temporary data
// directory and debug logs until the test ends.
func startDev(t *testing.T) devConsole {
	t.Helper()
	addr := freePort(t)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYCONSOLE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "KEYCONSOLE_HTTP_ADDR="+addr, "KEYCONSOLE_DATA_DIR="+t.TempDir(), "KEYCONSOLE_LOG_LEVEL=debug",
		"KEYCONSOLE_SFTP_ADDR=", "KEYCONSOLE_LOG_FORMAT=json")
	cmd := exec.Command(harness.Binary(t), "dev")
	cmd.Env = env
	cmd.Dir = t.TempDir()
	logs := &lockedLog{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	url := "http://" + addr
	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("keyconsole dev exited early:\n%s", logs.String())
		default:
		}
		if resp, err := client.Get(url + "/healthz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return devConsole{url: url, logs: logs}
			}
		}
	}
	t.Fatalf("keyconsole dev did not answer /healthz:\n%s", logs.String())
	return devConsole{}
}
