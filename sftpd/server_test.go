package sftpd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// mapAuth is a test Authenticator backed by a map of accounts and their keys.
type mapAuth struct {
	accounts map[string]mapAccount

	mu      sync.Mutex
	remotes []string
}

type mapAccount struct {
	id   Identity
	keys []ssh.PublicKey
}

var errNoSuchKey = errors.New("no active key matches")

func (m *mapAuth) AuthenticateKey(_ context.Context, account string, key ssh.PublicKey, remoteAddr string) (Identity, error) {
	m.mu.Lock()
	m.remotes = append(m.remotes, remoteAddr)
	m.mu.Unlock()
	acc, ok := m.accounts[account]
	if !ok {
		return Identity{}, errNoSuchKey
	}
	for _, k := range acc.keys {
		if subtle.ConstantTimeCompare(k.Marshal(), key.Marshal()) == 1 {
			id := acc.id
			id.KeyFingerprint = ssh.FingerprintSHA256(key)
			return id, nil
		}
	}
	return Identity{}, errNoSuchKey
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required for this test (Debian package openssh-client): %v", tool, err)
		}
	}
}

// clientKey generates an Ed25519 key pair with ssh-keygen and returns the
// private key path and the public key.
func clientKey(t *testing.T, dir, name string) (string, ssh.PublicKey) {
	t.Helper()
	path := filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return path, key
}

// testEnv is a running server and what a client needs to reach it.
type testEnv struct {
	srv        *Server
	port       string
	knownHosts string
	logs       *syncBuffer
}

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

func startServer(t *testing.T, auth Authenticator, opts ...func(*Config)) *testEnv {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := Config{
		HostKey: signer,
		Auth:    auth,
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after its context ended")
		}
	})
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%s %s", port, ssh.MarshalAuthorizedKey(signer.PublicKey()))
	if err := os.WriteFile(knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testEnv{srv: srv, port: port, knownHosts: knownHosts, logs: logs}
}

// clientOptions are the options every OpenSSH client invocation uses: no
// user configuration, only the given key, and strict host key checking
// against the server's key.
func (e *testEnv) clientOptions(key string) []string {
	return []string{
		"-i", key,
		"-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + e.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UpdateHostKeys=no",
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
	}
}

type result struct {
	exit           int
	stdout, stderr string
}

func runCmd(t *testing.T, dir string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.exit = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", name, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s timed out: %s", name, res.stderr)
	}
	return res
}

// sftpBatch runs the OpenSSH sftp client in batch mode from dir.
func (e *testEnv) sftpBatch(t *testing.T, dir, user, key, batch string) result {
	t.Helper()
	batchFile := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(batchFile, []byte(batch), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-b", batchFile, "-P", e.port}, e.clientOptions(key)...)
	return runCmd(t, dir, "sftp", append(args, user+"@127.0.0.1")...)
}

// sshRun runs the OpenSSH ssh client with options before the destination
// and a remote command after it.
func (e *testEnv) sshRun(t *testing.T, user, key string, opts, remote []string) result {
	t.Helper()
	args := append([]string{"-p", e.port}, e.clientOptions(key)...)
	args = append(append(args, opts...), user+"@127.0.0.1")
	return runCmd(t, t.TempDir(), "ssh", append(args, remote...)...)
}

type fixture struct {
	env                    *testEnv
	base                   string
	aliceRoot, bobRoot     string
	aliceKey, bobKey       string
	strangerKey, aliceKey2 string
}

func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	t.Helper()
	requireTools(t, "sftp", "ssh", "ssh-keygen")
	keys := t.TempDir()
	base := t.TempDir()
	aliceKey, alicePub := clientKey(t, keys, "alice")
	aliceKey2, alicePub2 := clientKey(t, keys, "alice-second")
	bobKey, bobPub := clientKey(t, keys, "bob")
	strangerKey, _ := clientKey(t, keys, "stranger")
	f := &fixture{
		base:        base,
		aliceRoot:   filepath.Join(base, "accounts", "alice"),
		bobRoot:     filepath.Join(base, "accounts", "bob"),
		aliceKey:    aliceKey,
		aliceKey2:   aliceKey2,
		bobKey:      bobKey,
		strangerKey: strangerKey,
	}
	auth := &mapAuth{accounts: map[string]mapAccount{
		"alice": {id: Identity{AccountID: 1, AgencyID: 10, Account: "alice", Root: f.aliceRoot}, keys: []ssh.PublicKey{alicePub, alicePub2}},
		"bob":   {id: Identity{AccountID: 2, AgencyID: 20, Account: "bob", Root: f.bobRoot}, keys: []ssh.PublicKey{bobPub}},
	}}
	f.env = startServer(t, auth, opts...)
	return f
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d expected", path, len(got), len(want))
	}
}

func assertAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists (err=%v), want absent", path, err)
	}
}

func TestSFTPRoundTrip(t *testing.T) {
	f := newFixture(t)
	local := t.TempDir()
	upload := randomBytes(t, 3<<20+123)
	writeFile(t, filepath.Join(local, "upload.bin"), upload)
	writeFile(t, filepath.Join(local, "small.txt"), []byte("small file\n"))
	assertAbsent(t, f.aliceRoot)

	res := f.env.sftpBatch(t, local, "alice", f.aliceKey, strings.Join([]string{
		"pwd",
		"mkdir docs",
		"put upload.bin docs/report.bin",
		"ls -l docs",
		"get docs/report.bin download.bin",
		"rename docs/report.bin docs/final.bin",
		"put small.txt docs/gone.txt",
		"rm docs/gone.txt",
		"mkdir empty",
		"rmdir empty",
		"chmod 640 docs/final.bin",
		"cd docs",
		"put small.txt",
		"ls",
	}, "\n")+"\n")
	if res.exit != 0 {
		t.Fatalf("sftp exit %d\nstdout:\n%s\nstderr:\n%s\nserver log:\n%s", res.exit, res.stdout, res.stderr, f.env.logs.String())
	}

	fi, err := os.Stat(f.aliceRoot)
	if err != nil {
		t.Fatalf("account root not created: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("account root mode %o, want 700", perm)
	}
	assertFile(t, filepath.Join(local, "download.bin"), upload)
	assertFile(t, filepath.Join(f.aliceRoot, "docs", "final.bin"), upload)
	assertFile(t, filepath.Join(f.aliceRoot, "docs", "small.txt"), []byte("small file\n"))
	assertAbsent(t, filepath.Join(f.aliceRoot, "docs", "report.bin"))
	assertAbsent(t, filepath.Join(f.aliceRoot, "docs", "gone.txt"))
	assertAbsent(t, filepath.Join(f.aliceRoot, "empty"))
	if fi, err := os.Stat(filepath.Join(f.aliceRoot, "docs", "final.bin")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("chmod: mode %v, err %v; want 640", fi.Mode().Perm(), err)
	}
	for _, want := range []string{"Remote working directory: /", "report.bin", "final.bin", "small.txt"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("sftp output lacks %q:\n%s", want, res.stdout)
		}
	}
	assertAbsent(t, f.bobRoot)

	logs := f.env.logs.String()
	if !strings.Contains(logs, `"msg":"sftp login"`) || !strings.Contains(logs, `"account":"alice"`) {
		t.Errorf("no login record in the server log:\n%s", logs)
	}
	pub, err := os.ReadFile(f.aliceKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if blob := strings.Fields(string(pub))[1]; strings.Contains(logs, blob[20:60]) {
		t.Errorf("server log contains key material")
	}

	// A second key of the same account reaches the same directory.
	res = f.env.sftpBatch(t, local, "alice", f.aliceKey2, "get docs/small.txt again.txt\n")
	if res.exit != 0 {
		t.Fatalf("second key: sftp exit %d: %s", res.exit, res.stderr)
	}
	assertFile(t, filepath.Join(local, "again.txt"), []byte("small file\n"))
}

func TestSFTPRefusesWrongKeys(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		user string
		key  string
	}{
		{"unknown key", "alice", f.strangerKey},
		{"another account's key", "alice", f.bobKey},
		{"key used on another account", "bob", f.aliceKey},
		{"unknown account", "mallory", f.aliceKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local := t.TempDir()
			res := f.env.sftpBatch(t, local, tt.user, tt.key, "ls\n")
			if res.exit != 255 {
				t.Fatalf("sftp exit %d, want 255\nstdout: %s\nstderr: %s", res.exit, res.stdout, res.stderr)
			}
			if !strings.Contains(res.stderr, "Permission denied (publickey)") {
				t.Errorf("stderr %q does not report a publickey refusal", res.stderr)
			}
		})
	}
	assertAbsent(t, f.aliceRoot)
	assertAbsent(t, f.bobRoot)
}

func TestMaxAuthTries(t *testing.T) {
	tests := []struct {
		name  string
		tries int
		exit  int
	}{
		{"third key within the limit", 3, 0},
		{"third key past the limit", 1, 255},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.MaxAuthTries = tt.tries })
			other, _ := clientKey(t, t.TempDir(), "other")
			// Two unknown keys are offered before alice's key.
			res := f.env.sshRun(t, "alice", f.strangerKey, []string{"-i", other, "-i", f.aliceKey, "-s"}, []string{"sftp"})
			if res.exit != tt.exit {
				t.Fatalf("ssh exit %d, want %d: %s", res.exit, tt.exit, res.stderr)
			}
		})
	}
}

func TestOnlyPublicKeyAuthentication(t *testing.T) {
	f := newFixture(t)
	res := f.env.sshRun(t, "alice", f.aliceKey,
		[]string{"-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "NumberOfPasswordPrompts=1"}, []string{"true"})
	if res.exit != 255 {
		t.Fatalf("ssh exit %d, want 255: %s", res.exit, res.stderr)
	}
	if !strings.Contains(res.stderr, "Permission denied (publickey)") {
		t.Errorf("server offers more than publickey: %q", res.stderr)
	}
}

func TestShellAndExecRefused(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name     string
		opts     []string
		remote   []string
		exit     int
		stderr   string
		noStdout string
	}{
		{"exec", []string{"-T"}, []string{"id"}, 1, "only provides SFTP", "uid="},
		{"exec with pty", []string{"-tt"}, []string{"cat /etc/passwd"}, 255, "PTY allocation request failed", "root:"},
		{"shell", []string{"-T"}, nil, 1, "only provides SFTP", ""},
		{"other subsystem", []string{"-s"}, []string{"netconf"}, 255, "subsystem request failed", ""},
		{"port forwarding", []string{"-W", "127.0.0.1:9"}, nil, 255, "forwarding failed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.env.sshRun(t, "alice", f.aliceKey, tt.opts, tt.remote)
			if res.exit != tt.exit {
				t.Fatalf("ssh exit %d, want %d\nstdout: %s\nstderr: %s", res.exit, tt.exit, res.stdout, res.stderr)
			}
			if !strings.Contains(res.stderr+res.stdout, tt.stderr) {
				t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", tt.stderr, res.stdout, res.stderr)
			}
			if tt.noStdout != "" && strings.Contains(res.stdout, tt.noStdout) {
				t.Errorf("command ran on the server: %s", res.stdout)
			}
		})
	}
}

func TestSFTPConfinement(t *testing.T) {
	f := newFixture(t)
	accounts := filepath.Dir(f.aliceRoot)
	secret := []byte("TOP-SECRET outside the account\n")
	outside := filepath.Join(f.base, "outside")
	writeFile(t, filepath.Join(f.base, "secret.txt"), secret)
	writeFile(t, filepath.Join(accounts, "secret.txt"), secret)
	writeFile(t, filepath.Join(f.bobRoot, "bob.txt"), secret)
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.aliceRoot, "inside.txt"), []byte("inside\n"))
	writeFile(t, filepath.Join(f.aliceRoot, "sub", "deep.txt"), []byte("deep\n"))
	// Links planted in the account directory by someone with host access.
	for link, target := range map[string]string{
		"etc":      "/etc",
		"up":       "..",
		"leak.txt": "../secret.txt",
		"abs.txt":  filepath.Join(f.base, "secret.txt"),
		"out":      outside,
		"bob":      "../bob",
		"sub/esc":  "../../../secret.txt",
	} {
		if err := os.Symlink(target, filepath.Join(f.aliceRoot, link)); err != nil {
			t.Fatal(err)
		}
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		batch string
		exit  int
	}{
		{"dot-dot path", "get ../../etc/passwd got", 1},
		{"absolute path", "get /etc/passwd got", 1},
		{"cd up then get", "cd ..\ncd ..\nget secret.txt got", 1},
		{"parent file", "get ../secret.txt got", 1},
		{"other account by path", "get ../bob/bob.txt got", 1},
		{"planted link to /etc", "get etc/passwd got", 1},
		{"cd into planted link", "cd etc\nget passwd got", 1},
		{"list planted link", "ls etc", 0},
		{"list through planted link", "ls etc/*", 1},
		{"list long through planted link", "ls -l up/*", 1},
		{"planted link to parent", "get up/secret.txt got", 1},
		{"planted link to other account", "get bob/bob.txt got", 1},
		{"planted relative file link", "get leak.txt got", 1},
		{"planted absolute file link", "get abs.txt got", 1},
		{"planted link in subdirectory", "get sub/esc got", 1},
		{"upload through planted link", "put local.txt out/evil.txt", 1},
		{"mkdir through planted link", "mkdir out/newdir", 1},
		{"rename into planted link", "rename inside.txt out/moved.txt", 1},
		{"remove through planted link", "rm up/secret.txt", 1},
		{"rmdir a planted link", "rmdir up", 1},
		{"chmod through planted link", "chmod 777 leak.txt", 1},
		{"create symlink", "symlink /etc mylink", 1},
		{"create relative symlink", "ln -s ../secret.txt mylink", 1},
		{"create hard link", "ln inside.txt mylink", 1},
		{"upload to parent stays inside", "put local.txt ../../evil.txt", 0},
		{"rename to parent stays inside", "put local.txt x.txt\nrename x.txt ../../moved.txt", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local := t.TempDir()
			writeFile(t, filepath.Join(local, "local.txt"), []byte("uploaded\n"))
			res := f.env.sftpBatch(t, local, "alice", f.aliceKey, tt.batch+"\n")
			if res.exit != tt.exit {
				t.Fatalf("sftp exit %d, want %d\nstdout: %s\nstderr: %s", res.exit, tt.exit, res.stdout, res.stderr)
			}
			entries, err := os.ReadDir(local)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Name() != "local.txt" {
					t.Errorf("a file was downloaded: %s", e.Name())
				}
			}
			for _, line := range strings.Split(res.stdout, "\n") {
				if strings.HasPrefix(line, "sftp>") {
					continue // the batch command echoed
				}
				if strings.Contains(line, "passwd") || strings.Contains(line, "bob.txt") || strings.Contains(line, "secret.txt") {
					t.Errorf("listing shows files outside the account:\n%s", res.stdout)
				}
			}
		})
	}

	// Nothing outside the account changed, and planted links are intact.
	assertFile(t, filepath.Join(f.base, "secret.txt"), secret)
	assertFile(t, filepath.Join(accounts, "secret.txt"), secret)
	assertFile(t, filepath.Join(f.bobRoot, "bob.txt"), secret)
	assertFile(t, "/etc/passwd", passwd)
	if entries, err := os.ReadDir(outside); err != nil || len(entries) != 0 {
		t.Errorf("outside directory changed: %v %v", entries, err)
	}
	for _, p := range []string{filepath.Join(f.base, "evil.txt"), filepath.Join(accounts, "evil.txt"), filepath.Join(accounts, "moved.txt"), filepath.Join(f.base, "moved.txt"), filepath.Join(f.aliceRoot, "mylink")} {
		assertAbsent(t, p)
	}
	if fi, err := os.Lstat(filepath.Join(f.aliceRoot, "up")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("planted link removed: %v", err)
	}
	assertFile(t, filepath.Join(f.aliceRoot, "inside.txt"), []byte("inside\n"))
	assertFile(t, filepath.Join(f.aliceRoot, "evil.txt"), []byte("uploaded\n"))
	assertFile(t, filepath.Join(f.aliceRoot, "moved.txt"), []byte("uploaded\n"))
	if fi, err := os.Stat(filepath.Join(accounts, "secret.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode of the file outside changed: %v %v", fi.Mode(), err)
	}
	if logs := f.env.logs.String(); !strings.Contains(logs, "sftp path outside account refused") {
		t.Errorf("escape attempts were not logged:\n%s", logs)
	}
}

func TestIdleTimeout(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	pem, err := os.ReadFile(f.aliceKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	kex, ciphers := algorithms()
	client, err := ssh.Dial("tcp", "127.0.0.1:"+f.env.port, &ssh.ClientConfig{
		Config:          ssh.Config{KeyExchanges: kex, Ciphers: ciphers, MACs: macsAllowed},
		User:            "alice",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(mustHostKey(t, f.env.knownHosts)),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer client.Close()
	done := make(chan error, 1)
	go func() { done <- client.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("idle connection was not closed")
	}
	if _, err := client.NewSession(); err == nil {
		t.Fatal("session opened on a connection that should be closed")
	}
}

func mustHostKey(t *testing.T, knownHosts string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	_, _, key, _, _, err := ssh.ParseKnownHosts(b)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestNewValidatesConfig(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	auth := &mapAuth{}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"valid", Config{HostKey: signer, Auth: auth}, ""},
		{"no host key", Config{Auth: auth}, "host key"},
		{"no authenticator", Config{HostKey: signer}, "authenticator"},
		{"negative tries", Config{HostKey: signer, Auth: auth, MaxAuthTries: -1}, "MaxAuthTries"},
		{"negative idle", Config{HostKey: signer, Auth: auth, IdleTimeout: -time.Second}, "IdleTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if srv.cfg.MaxAuthTries != DefaultMaxAuthTries || srv.cfg.IdleTimeout != DefaultIdleTimeout {
					t.Errorf("defaults not applied: %+v", srv.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestCloseStopsServe(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{HostKey: signer, Auth: &mapAuth{}, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != nil {
		t.Errorf("Addr before Serve = %v, want nil", srv.Addr())
	}
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(context.Background()) }()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Addr() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if srv.Addr() == nil {
		t.Fatal("server did not start listening")
	}
	// An open, unauthenticated connection must not keep Serve alive.
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("ListenAndServe = %v, want ErrServerClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	if _, err := io.ReadAll(conn); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("read after close: %v", err)
	}
	if err := srv.Serve(context.Background(), mustListen(t)); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close = %v, want ErrServerClosed", err)
	}
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestRel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/", "."},
		{"", "."},
		{".", "."},
		{"..", "."},
		{"/../../etc/passwd", "etc/passwd"},
		{"a/../../b", "b"},
		{"/a/./b/", "a/b"},
		{"//a//b", "a/b"},
	}
	for _, tt := range tests {
		if got := rel(tt.in); got != tt.want {
			t.Errorf("rel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
