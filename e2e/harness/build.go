// Package harness runs the real keyconsole binary for end-to-end tests: it
// builds the binary once per test process, starts it against a real database
// and a real OIDC provider (mockoidc), seeds agencies through the real CLI,
// and drives it with a real Chromium through chromedp or with a plain HTTP
// client for forged and replayed requests.
//
// A test package using the harness declares
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
//
// so the built binary is removed when the tests end.
package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// build is the binary built once for the whole test process.
type build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

var shared build

// Main runs the tests of a package and removes the built binary afterwards.
// Use it from TestMain: os.Exit(harness.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	return code
}

// Binary returns the path of the keyconsole binary, building it from the
// module root on first use (go build -o <tmp>/keyconsole ./cmd/keyconsole).
func Binary(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			shared.err = err
			return
		}
		dir, err := os.MkdirTemp("", "keyconsole-e2e-")
		if err != nil {
			shared.err = fmt.Errorf("harness: temp dir for the binary: %w", err)
			return
		}
		shared.dir = dir
		out := filepath.Join(dir, "keyconsole")
		cmd := exec.Command(goTool(), "build", "-o", out, "./cmd/keyconsole")
		cmd.Dir = root
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Run(); err != nil {
			shared.err = fmt.Errorf("harness: go build ./cmd/keyconsole: %w\n%s", err, buf.String())
			return
		}
		shared.path = out
	})
	if shared.err != nil {
		t.Fatalf("%v", shared.err)
	}
	return shared.path
}

// ModuleRoot finds the keyconsole module root by walking up from the
// working directory to the go.mod that declares module keyconsole.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("harness: working directory: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.TrimSpace(line) == "module keyconsole" {
					return dir, nil
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: no go.mod declaring module keyconsole above the working directory")
		}
		dir = parent
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}
