package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"keyconsole/e2e/harness"
	"keyconsole/models"
	"keyconsole/models/modelstest"
)

const sshKeysPath = "/a/" + harness.DemoSlug + "/ssh-keys"

var (
	sftpCSRF       = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	sftpUploadLink = regexp.MustCompile(`href="(/a/[a-z0-9-]+/ssh-keys/accounts/\d+/upload)" id="upload-([a-z0-9-]+)"|id="upload-([a-z0-9-]+)" href="(/a/[a-z0-9-]+/ssh-keys/accounts/\d+/upload)"`)
	sftpRefusal    = regexp.MustCompile(`(?s)id="upload-refusal".*?<h2 class="usa-alert__heading">(.*?)</h2>\s*<p class="usa-alert__text">(.*?)</p>`)
)

// sftpSignIn signs u in over plain HTTP (console, mock provider, callback)
// and returns the client holding the session.
func sftpSignIn(t *testing.T, c *harness.Console, u harness.User) *harness.Client {
	t.Helper()
	cl := c.Client()
	c.Queue(u)
	r := cl.PostForm("/auth/login/"+harness.ProviderID, url.Values{"_csrf": {sftpToken(t, cl, "/signin")}, "return_to": {"/"}})
	for i := 0; r.Status == http.StatusFound || r.Status == http.StatusSeeOther; i++ {
		if i > 5 {
			t.Fatalf("sign-in of %s: too many redirects", u.Name)
		}
		r = cl.Get(r.Location())
	}
	if r.Status != http.StatusOK || !strings.Contains(r.Body, u.Name) {
		t.Fatalf("sign-in of %s ended with %d", u.Name, r.Status)
	}
	return cl
}

// sftpToken reads the CSRF token of a page the client can open.
func sftpToken(t *testing.T, cl *harness.Client, path string) string {
	t.Helper()
	r := cl.Get(path)
	m := sftpCSRF.FindStringSubmatch(r.Body)
	if r.Status != http.StatusOK || m == nil {
		t.Fatalf("GET %s = %d, no CSRF field", path, r.Status)
	}
	return html.UnescapeString(m[1])
}

// sftpCreateAccount creates the demo agency's account for env and returns
// its upload path.
func sftpCreateAccount(t *testing.T, cl *harness.Client, env string) string {
	t.Helper()
	r := cl.PostForm(sshKeysPath+"/accounts", url.Values{"_csrf": {sftpToken(t, cl, sshKeysPath)}, "environment": {env}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("create %s account: %d", env, r.Status)
	}
	return sftpUploadPath(t, cl, harness.DemoSlug+"-"+env)
}

func sftpUploadPath(t *testing.T, cl *harness.Client, account string) string {
	t.Helper()
	r := cl.Get(sshKeysPath)
	for _, m := range sftpUploadLink.FindAllStringSubmatch(r.Body, -1) {
		if m[2] == account {
			return m[1]
		}
		if m[3] == account {
			return m[4]
		}
	}
	t.Fatalf("no upload link for %s on the SSH keys page (%d)", account, r.Status)
	return ""
}

// upload is one submission of the upload form.
type upload struct {
	paste, fileName string
	file            []byte
	expiresOn       string
}

func sftpUpload(t *testing.T, cl *harness.Client, path string, u upload) harness.Response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	list, _, _ := strings.Cut(path, "/ssh-keys")
	fields := [][2]string{{"_csrf", sftpToken(t, cl, list+"/ssh-keys")}, {"public_key", u.paste}, {"expires_on", u.expiresOn}}
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := w.CreateFormFile("public_key_file", u.fileName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(u.file); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, cl.Base+path, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	return cl.Do(req)
}

// sftpMustUpload uploads a key and fails unless it was accepted.
func sftpMustUpload(t *testing.T, cl *harness.Client, path string, u upload) {
	t.Helper()
	if r := sftpUpload(t, cl, path, u); r.Status != http.StatusSeeOther {
		m := sftpRefusal.FindStringSubmatch(r.Body)
		t.Fatalf("upload refused with %d: %v", r.Status, m)
	}
}

// sftpKey is a key pair made by ssh-keygen.
type sftpKey struct {
	path string
	pub  []byte
	priv []byte
	key  ssh.PublicKey
}

func sftpKeygen(t *testing.T, dir, name string, args ...string) sftpKey {
	t.Helper()
	path := filepath.Join(dir, name)
	args = append([]string{"-q", "-N", "", "-C", name + "@demo-county", "-f", path}, args...)
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	k := sftpKey{path: path}
	var err error
	if k.pub, err = os.ReadFile(path + ".pub"); err != nil {
		t.Fatal(err)
	}
	if k.priv, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if k.key, _, _, _, err = ssh.ParseAuthorizedKey(k.pub); err != nil {
		t.Fatal(err)
	}
	return k
}

// sftpClient runs OpenSSH's sftp against one server with strict host key
// checking against a known_hosts file.
type sftpClient struct {
	t          *testing.T
	dir        string
	knownHosts string
}

// result of one sftp run.
type sftpResult struct {
	out  string
	code int
}

func (s sftpClient) run(addr, user string, key sftpKey, batch string) sftpResult {
	s.t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sftp", "-b", "-", "-P", port, "-i", key.path, "-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile="+s.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no",
		"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", user+"@"+host)
	cmd.Dir = s.dir
	cmd.Stdin = strings.NewReader(batch)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		s.t.Fatalf("sftp: %v", err)
	}
	return sftpResult{out: string(out), code: cmd.ProcessState.ExitCode()}
}

func (s sftpClient) mustWork(addr, user string, key sftpKey, batch string) string {
	s.t.Helper()
	r := s.run(addr, user, key, batch)
	if r.code != 0 {
		s.t.Fatalf("sftp %s with %s: exit %d\n%s", user, filepath.Base(key.path), r.code, r.out)
	}
	return r.out
}

func (s sftpClient) mustBeRefused(addr, user string, key sftpKey) {
	s.t.Helper()
	r := s.run(addr, user, key, "ls\n")
	if r.code != 255 || !strings.Contains(r.out, "Permission denied") {
		s.t.Fatalf("sftp %s with %s: exit %d, want 255 and a refusal\n%s", user, filepath.Base(key.path), r.code, r.out)
	}
}

// hostKeyOf reads the Ed25519 host key a server presents, with OpenSSH's
// ssh-keyscan.
func hostKeyOf(t *testing.T, addr string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("ssh-keyscan", "-T", "10", "-p", port, "-t", "ed25519", host)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh-keyscan %s: %v: %s", addr, err, stderr.String())
	}
	f := strings.Fields(string(out))
	if len(f) != 3 || f[1] != ssh.KeyAlgoED25519 {
		t.Fatalf("ssh-keyscan %s printed %q", addr, out)
	}
	return f[1] + " " + f[2]
}

func knownHostsLine(addr, key string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("[%s]:%s %s\n", host, port, key)
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t *testing.T, addr string, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("the server for %s exited", addr)
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startSFTPReplica runs `keyconsole sftp` on the console's database and data
// directory with its own SFTP address, as a second replica would.
func startSFTPReplica(t *testing.T, c *harness.Console) (string, *lockedBuffer) {
	t.Helper()
	addr := freeLoopbackAddr(t)
	env := append(c.Env(), "KEYCONSOLE_SFTP_ADDR="+addr)
	cmd := exec.Command(harness.Binary(t), "sftp")
	cmd.Env = env
	cmd.Dir = t.TempDir()
	logs := &lockedBuffer{}
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
			t.Error("keyconsole sftp did not stop within 15s of SIGTERM")
		}
	})
	waitListening(t, addr, done)
	return addr, logs
}

// lockedBuffer collects a child process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// dumpAll returns every value of every column of every table of the
// console's database as text, one line per row.
func dumpAll(t *testing.T, db *models.DB) string {
	t.Helper()
	q := "SELECT name FROM sqlite_master WHERE type = 'table'"
	if db.Dialect == models.Postgres {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
	}
	var tables []string
	if err := db.Gorm.Raw(q).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tables, "ssh_keys") || !slices.Contains(tables, "audit_events") {
		t.Fatalf("tables %v", tables)
	}
	var out strings.Builder
	for _, table := range tables {
		rows, err := db.SQL().Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out.WriteString(table)
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					out.WriteString("\t" + string(b))
				} else {
					fmt.Fprintf(&out, "\t%v", v)
				}
			}
			out.WriteString("\n")
		}
		rows.Close()
	}
	return out.String()
}

// privateFragments cuts the base64 body of a private key file into
// overlapping 12-character pieces.
func privateFragments(t *testing.T, priv []byte) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(string(priv), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "-----") || strings.Contains(line, ":") {
			continue
		}
		for i := 0; i+12 <= len(line); i += 4 {
			out = append(out, line[i:i+12])
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d fragments in the private key", len(out))
	}
	return out
}

func assertNoFragment(t *testing.T, priv []byte, haystack, where string) {
	t.Helper()
	for _, f := range privateFragments(t, priv) {
		if strings.Contains(haystack, f) {
			t.Fatalf("%s contains %q from the private key", where, f)
		}
	}
}

func authorizedKeysOf(t *testing.T, c *harness.Console, user string) []string {
	t.Helper()
	r := c.CLI("authorized-keys", user)
	if r.Code != 0 {
		t.Fatalf("authorized-keys %s: exit %d: %s", user, r.Code, r.Stderr)
	}
	var fps []string
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if line == "" {
			continue
		}
		key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil || len(rest) != 0 || !slices.Equal(options, []string{"restrict"}) {
			t.Fatalf("authorized-keys line %q: options %q, %v", line, options, err)
		}
		fps = append(fps, ssh.FingerprintSHA256(key))
	}
	slices.Sort(fps)
	return fps
}

func fingerprints(keys ...sftpKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, ssh.FingerprintSHA256(k.key))
	}
	slices.Sort(out)
	return out
}

// TestSFTPKeysEndToEnd uploads keys through the console and uses them with
// OpenSSH's sftp against the SFTP server of `keyconsole serve`, then checks
// the host key survives a restart and is shared by a second replica, and
// that `keyconsole authorized-keys` lists exactly the usable keys.
func TestSFTPKeysEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range []models.Dialect{models.SQLite, models.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			c := harness.Start(t, harness.Options{Dialect: d, SFTP: true})
			c.SeedDemo()
			admin := sftpSignIn(t, c, harness.AdminUser())
			prodUpload := sftpCreateAccount(t, admin, "prod")
			stgUpload := sftpCreateAccount(t, admin, "stg")
			const prod, stg = harness.DemoSlug + "-prod", harness.DemoSlug + "-stg"

			keys := t.TempDir()
			a := sftpKeygen(t, keys, "key-a", "-t", "ed25519")
			b := sftpKeygen(t, keys, "key-b", "-t", "ecdsa", "-b", "256")
			exp := sftpKeygen(t, keys, "key-expiring", "-t", "ed25519")
			other := sftpKeygen(t, keys, "key-stg", "-t", "ed25519")

			work := t.TempDir()
			// The SFTP server starts beside the web server; /healthz does not wait for it.
			waitListening(t, c.SFTPAddr, nil)
			hostKey := hostKeyOf(t, c.SFTPAddr)
			known := filepath.Join(work, "known_hosts")
			if err := os.WriteFile(known, []byte(knownHostsLine(c.SFTPAddr, hostKey)), 0o600); err != nil {
				t.Fatal(err)
			}
			cl := sftpClient{t: t, dir: work, knownHosts: known}
			report := []byte("case,date\n2026-0001,2026-12-01\n")
			if err := os.WriteFile(filepath.Join(work, "report.csv"), report, 0o600); err != nil {
				t.Fatal(err)
			}

			// Key A, pasted: upload and download a file.
			sftpMustUpload(t, admin, prodUpload, upload{paste: string(a.pub)})
			cl.mustWork(c.SFTPAddr, prod, a, "put report.csv\nget report.csv back-a.csv\nls -l\n")
			if got, err := os.ReadFile(filepath.Join(work, "back-a.csv")); err != nil || !bytes.Equal(got, report) {
				t.Fatalf("downloaded %q, %v", got, err)
			}
			if got, err := os.ReadFile(filepath.Join(c.DataDir, "sftp", prod, "report.csv")); err != nil || !bytes.Equal(got, report) {
				t.Fatalf("file in the account directory: %q, %v", got, err)
			}

			// Key B, as a file: both keys work.
			sftpMustUpload(t, admin, prodUpload, upload{fileName: "key-b.pub", file: b.pub})
			for _, k := range []sftpKey{a, b} {
				if out := cl.mustWork(c.SFTPAddr, prod, k, "ls\n"); !strings.Contains(out, "report.csv") {
					t.Fatalf("listing with %s: %s", k.path, out)
				}
			}

			// Revoke A through its confirmation page: A is refused, B works.
			keyA := sftpKeyRecord(t, c, a)
			revokePath := sshKeysPath + "/keys/" + fmt.Sprint(keyA.ID) + "/revoke"
			confirm := admin.Get(revokePath)
			if confirm.Status != http.StatusOK || !strings.Contains(confirm.Body, keyA.Fingerprint) || !strings.Contains(confirm.Body, "1 other key stays active") {
				t.Fatalf("revoke confirmation: %d", confirm.Status)
			}
			if r := admin.PostForm(revokePath, url.Values{"_csrf": {sftpToken(t, admin, revokePath)}}); r.Status != http.StatusSeeOther {
				t.Fatalf("revoke: %d", r.Status)
			}
			cl.mustBeRefused(c.SFTPAddr, prod, a)
			cl.mustWork(c.SFTPAddr, prod, b, "get report.csv back-b.csv\n")

			// A key whose expiry date has passed is refused.
			sftpMustUpload(t, admin, prodUpload, upload{paste: string(exp.pub), expiresOn: time.Now().UTC().AddDate(0, 0, 7).Format(time.DateOnly)})
			cl.mustWork(c.SFTPAddr, prod, exp, "ls\n")
			if err := c.DB().Gorm.Model(&models.SSHKey{}).Where("fingerprint = ?", ssh.FingerprintSHA256(exp.key)).
				Update("expires_at", time.Now().UTC().Add(-time.Minute)).Error; err != nil {
				t.Fatal(err)
			}
			cl.mustBeRefused(c.SFTPAddr, prod, exp)

			// Another account's key is refused; the accounts see their own files.
			sftpMustUpload(t, admin, stgUpload, upload{paste: string(other.pub)})
			cl.mustBeRefused(c.SFTPAddr, prod, other)
			cl.mustBeRefused(c.SFTPAddr, stg, b)
			if out := cl.mustWork(c.SFTPAddr, stg, other, "ls -a\n"); strings.Contains(out, "report.csv") {
				t.Fatalf("the stg account sees the prod account's file:\n%s", out)
			}

			// The account directory is a jail.
			jail := cl.run(c.SFTPAddr, prod, b, "-get ../../etc/passwd up.txt\n-get /etc/passwd abs.txt\n-symlink /etc/passwd link\n-get link link.txt\n-symlink ../../../etc link2\n-ls link2\npwd\n")
			if jail.code != 0 {
				t.Fatalf("jail batch: exit %d\n%s", jail.code, jail.out)
			}
			for _, f := range []string{"up.txt", "abs.txt", "link.txt"} {
				if _, err := os.Stat(filepath.Join(work, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s was downloaded from outside the account directory (%v)\n%s", f, err, jail.out)
				}
			}
			if strings.Contains(jail.out, "root:") {
				t.Fatalf("/etc/passwd leaked:\n%s", jail.out)
			}

			// authorized-keys lists exactly the active, unexpired keys.
			if got, want := authorizedKeysOf(t, c, prod), fingerprints(b); !slices.Equal(got, want) {
				t.Errorf("authorized-keys %s = %v, want %v", prod, got, want)
			}
			if got, want := authorizedKeysOf(t, c, stg), fingerprints(other); !slices.Equal(got, want) {
				t.Errorf("authorized-keys %s = %v, want %v", stg, got, want)
			}
			if r := c.CLI("authorized-keys", "nobody-prod"); r.Code != 0 || r.Stdout != "" {
				t.Errorf("authorized-keys of an unknown user: exit %d, output %q", r.Code, r.Stdout)
			}

			// A second replica on the same database presents the same host key.
			replica, replicaLogs := startSFTPReplica(t, c)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("keyconsole sftp output:\n%s", replicaLogs)
				}
			})
			if got := hostKeyOf(t, replica); got != hostKey {
				t.Fatalf("replica presents %s, the console %s\n%s", got, hostKey, replicaLogs)
			}
			known2 := filepath.Join(work, "known_hosts_replica")
			if err := os.WriteFile(known2, []byte(knownHostsLine(replica, hostKey)), 0o600); err != nil {
				t.Fatal(err)
			}
			cl2 := sftpClient{t: t, dir: work, knownHosts: known2}
			if out := cl2.mustWork(replica, prod, b, "ls\n"); !strings.Contains(out, "report.csv") {
				t.Fatalf("replica listing:\n%s", out)
			}
			cl2.mustBeRefused(replica, prod, a)

			// Stopping flushes last use and refusal summaries; after a restart
			// the same host key is presented and B still works.
			c.Stop()
			keyB := sftpKeyRecord(t, c, b)
			if keyB.LastUsedAt == nil {
				t.Errorf("last use of key B not recorded")
			}
			if got := sftpKeyRecord(t, c, other); got.LastUsedAt == nil {
				t.Errorf("last use of the stg key not recorded")
			}
			c.Restart()
			waitListening(t, c.SFTPAddr, nil)
			if got := hostKeyOf(t, c.SFTPAddr); got != hostKey {
				t.Fatalf("after restart the host key is %s, was %s", got, hostKey)
			}
			cl.mustWork(c.SFTPAddr, prod, b, "ls\n")

			// Audit: uploads, the revocation, logins (after signing only) and
			// refusal summaries in Demo County's chain.
			demo := agencyID(t, c, harness.DemoSlug)
			for action, min := range map[string]int{"ssh_key.upload": 4, "ssh_key.revoke": 1, "sftp_account.create": 2, "sftp.login": 9, "sftp.login_refused": 1} {
				evs := c.AuditEvents(action)
				n := 0
				for _, e := range evs {
					if e.AgencyID == demo {
						n++
					}
				}
				if n < min {
					t.Errorf("%d %s records in Demo County's chain, want at least %d", n, action, min)
				}
			}
			var reasons []string
			for _, e := range c.AuditEvents("sftp.login_refused") {
				reasons = append(reasons, e.TargetName+"/"+e.Reason)
				if e.SourceIP != "127.0.0.1" || !strings.Contains(e.Details, `"count"`) {
					t.Errorf("refusal summary %+v", e)
				}
			}
			for _, want := range []string{prod + "/unknown_key", prod + "/expired", prod + "/wrong_account", stg + "/wrong_account"} {
				if !slices.Contains(reasons, want) {
					t.Errorf("no refusal summary %s in %v", want, reasons)
				}
			}
			if evs := c.AuditEvents("sftp_host_key.create"); len(evs) != 1 {
				t.Errorf("%d host key creation records, want 1", len(evs))
			}
		})
	}
}

func sftpKeyRecord(t *testing.T, c *harness.Console, k sftpKey) models.SSHKey {
	t.Helper()
	var rec models.SSHKey
	if err := c.DB().Gorm.Where("fingerprint = ?", ssh.FingerprintSHA256(k.key)).Order("id DESC").Take(&rec).Error; err != nil {
		t.Fatalf("key %s: %v", k.path, err)
	}
	return rec
}

// TestSSHKeyUploadRefusalsOverHTTP submits every kind of refused upload
// through the real HTTP stack: each answers 422 with its reason and stores
// nothing; private keys are audited without any part of them and appear
// nowhere in the database or the server's logs.
func TestSSHKeyUploadRefusalsOverHTTP(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, harness.Options{Dialect: models.SQLite})
	c.SeedDemo()
	admin := sftpSignIn(t, c, harness.AdminUser())
	prodUpload := sftpCreateAccount(t, admin, "prod")
	stgUpload := sftpCreateAccount(t, admin, "stg")

	dir := t.TempDir()
	ed := sftpKeygen(t, dir, "ed", "-t", "ed25519")
	ec := sftpKeygen(t, dir, "ec", "-t", "ecdsa", "-b", "384")
	rsa2048 := sftpKeygen(t, dir, "rsa2048", "-t", "rsa", "-b", "2048")
	leaked := sftpKeygen(t, dir, "leaked", "-t", "ed25519")
	leakedPEM := sftpKeygen(t, dir, "leaked-pem", "-t", "ecdsa", "-m", "PEM")
	sftpMustUpload(t, admin, prodUpload, upload{paste: string(ed.pub)})

	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dsaPub, err := os.ReadFile(filepath.Join(root, "services", "sshkeys", "testdata", "dsa.pub"))
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("A"), 17<<10)
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	cases := []struct {
		name    string
		path    string
		up      upload
		heading string
		message string
	}{
		{"empty", prodUpload, upload{}, "The key was not added", "The upload is empty"},
		{"garbage", prodUpload, upload{paste: "hello"}, "The key was not added", "not a recognised SSH public key"},
		{"options", prodUpload, upload{paste: "restrict " + string(ec.pub)}, "The key was not added", "authorized_keys options"},
		{"two keys", prodUpload, upload{paste: string(ec.pub) + string(rsa2048.pub)}, "The key was not added", "2 public keys"},
		{"short RSA", prodUpload, upload{paste: string(rsa2048.pub)}, "The key was not added", "minimum is 3072 bits"},
		{"DSA", prodUpload, upload{fileName: "dsa.pub", file: dsaPub}, "The key was not added", "DSA"},
		{"file too large", prodUpload, upload{fileName: "big.pub", file: big}, "The key was not added", "the limit is 16 KiB"},
		{"paste too large", prodUpload, upload{paste: string(big)}, "The key was not added", "the limit is 16 KiB"},
		{"duplicate, same account", prodUpload, upload{paste: string(ed.pub)}, "The key was not added", "already active on the SFTP account " + harness.DemoSlug + "-prod"},
		{"duplicate, other account", stgUpload, upload{fileName: "ed.pub", file: ed.pub}, "The key was not added", "separate key pair for " + harness.DemoSlug + "-stg"},
		{"expiry in the past", prodUpload, upload{paste: string(ec.pub), expiresOn: yesterday}, "", "The expiry date must be in the future."},
		{"expiry not a date", prodUpload, upload{paste: string(ec.pub), expiresOn: "soon"}, "", "Enter the expiry date as YYYY-MM-DD"},
		{"paste and file", prodUpload, upload{paste: string(ec.pub), fileName: "ed.pub", file: ed.pub}, "", "Paste the key or choose its file, not both."},
		{"private key pasted", prodUpload, upload{paste: string(leaked.priv), expiresOn: tomorrow}, "That was a private key: treat the key pair as exposed", "treat this key pair as exposed"},
		{"private key as a file, bad date", stgUpload, upload{fileName: "id_ecdsa", file: leakedPEM.priv, expiresOn: "soon"}, "That was a private key: treat the key pair as exposed", "treat this key pair as exposed"},
		{"private key with a public key", prodUpload, upload{paste: string(ec.pub), fileName: "id_ed25519", file: leaked.priv}, "That was a private key: treat the key pair as exposed", "treat this key pair as exposed"},
	}
	var before int64
	c.DB().Gorm.Model(&models.SSHKey{}).Count(&before)
	for _, tc := range cases {
		r := sftpUpload(t, admin, tc.path, tc.up)
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422", tc.name, r.Status)
			continue
		}
		body := html.UnescapeString(r.Body)
		if !strings.Contains(body, tc.message) {
			t.Errorf("%s: page does not say %q", tc.name, tc.message)
		}
		if tc.heading != "" {
			m := sftpRefusal.FindStringSubmatch(r.Body)
			if m == nil || html.UnescapeString(m[1]) != tc.heading {
				t.Errorf("%s: refusal heading %v, want %q", tc.name, m, tc.heading)
			}
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", tc.name, r.Header.Get("Cache-Control"))
		}
		for _, k := range []sftpKey{leaked, leakedPEM} {
			assertNoFragment(t, k.priv, r.Body, tc.name+" response")
		}
	}
	var after int64
	c.DB().Gorm.Model(&models.SSHKey{}).Count(&after)
	if after != before {
		t.Errorf("%d keys stored after refusals, %d before", after, before)
	}

	// Viewers read but cannot upload or revoke; another agency's records
	// answer exactly like missing ones.
	viewer := sftpSignIn(t, c, harness.ViewerUser())
	if r := viewer.Get(sshKeysPath); r.Status != http.StatusOK || strings.Contains(r.Body, `id="upload-`) || !strings.Contains(r.Body, ssh.FingerprintSHA256(ed.key)) {
		t.Errorf("viewer's SSH keys page: %d", r.Status)
	}
	if r := sftpUpload(t, viewer, sshKeysPath, upload{paste: string(ec.pub)}); r.Status != http.StatusMethodNotAllowed && r.Status != http.StatusNotFound {
		t.Errorf("viewer POST to the list: %d", r.Status)
	}
	if r := viewer.Get(prodUpload); r.Status != http.StatusNotFound {
		t.Errorf("viewer opens the upload form: %d, want 404", r.Status)
	}
	c.MustCLI("agency", "create", "other-county", "--name", "Other County")
	ctx := context.Background()
	store := models.NewSSHKeyStore(c.DB())
	otherAgency := agencyID(t, c, "other-county")
	otherAcc := models.SFTPAccount{AgencyID: otherAgency, Name: "other-county-prod", Environment: models.EnvProd, CreatedAt: time.Now().UTC()}
	if err := store.CreateAccount(ctx, &otherAcc); err != nil {
		t.Fatal(err)
	}
	otherKey := models.SSHKey{AgencyID: otherAgency, AccountID: otherAcc.ID, KeyType: ssh.KeyAlgoED25519, Bits: 256,
		Fingerprint: ssh.FingerprintSHA256(ec.key), PublicKey: strings.Join(strings.Fields(string(ec.pub))[:2], " "), CreatedAt: time.Now().UTC()}
	if err := store.CreateKey(ctx, &otherKey); err != nil {
		t.Fatal(err)
	}
	missing := admin.Get(sshKeysPath + "/accounts/999999/upload")
	foreign := admin.Get(sshKeysPath + "/accounts/" + fmt.Sprint(otherAcc.ID) + "/upload")
	if missing.Status != http.StatusNotFound || foreign.Status != http.StatusNotFound || stripRequestID(missing.Body) != stripRequestID(foreign.Body) {
		t.Errorf("another agency's account answers %d, a missing one %d; the pages differ: %v", foreign.Status, missing.Status, stripRequestID(missing.Body) != stripRequestID(foreign.Body))
	}
	token := sftpToken(t, admin, sshKeysPath)
	for _, p := range []string{"/keys/" + fmt.Sprint(otherKey.ID) + "/revoke", "/keys/999999/revoke"} {
		if r := admin.Get(sshKeysPath + p); r.Status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.Status)
		}
		if r := admin.PostForm(sshKeysPath+p, url.Values{"_csrf": {token}}); r.Status != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", p, r.Status)
		}
	}
	if r := sftpUpload(t, admin, sshKeysPath+"/accounts/"+fmt.Sprint(otherAcc.ID)+"/upload", upload{paste: string(ed.pub)}); r.Status != http.StatusNotFound {
		t.Errorf("upload to another agency's account: %d, want 404", r.Status)
	}
	if got, _ := store.Key(ctx, otherAgency, otherKey.ID); got.RevokedAt != nil {
		t.Errorf("another agency's key was revoked")
	}

	// Three private keys were refused: audited without any part of them,
	// and found nowhere in the database or the logs.
	evs := c.AuditEvents("ssh_key.private_key_refused")
	if len(evs) != 3 {
		t.Fatalf("%d private key refusal records, want 3", len(evs))
	}
	for _, e := range evs {
		if e.Outcome != "denied" || e.TargetType != "sftp_account" || e.Details != "" || e.ActorName != "Ada Admin" || strings.Contains(e.TargetName, "SHA256") {
			t.Errorf("refusal record %+v", e)
		}
	}
	c.Stop()
	dump := dumpAll(t, c.DB())
	for _, k := range []sftpKey{leaked, leakedPEM} {
		assertNoFragment(t, k.priv, dump, "the database")
		assertNoFragment(t, k.priv, c.Logs(), "the server's logs")
		for _, fp := range []string{ssh.FingerprintSHA256(k.key), strings.TrimPrefix(ssh.FingerprintSHA256(k.key), "SHA256:")} {
			if strings.Contains(dump, fp) || strings.Contains(c.Logs(), fp) {
				t.Errorf("the fingerprint of a refused private key was kept")
			}
		}
	}
	if !strings.Contains(c.Logs(), `"path":"`+prodUpload+`"`) {
		t.Errorf("the request log has no line for the uploads; is it captured?")
	}
}

var requestIDAttr = regexp.MustCompile(`[0-9a-f]{24}`)

func stripRequestID(s string) string { return requestIDAttr.ReplaceAllString(s, "") }

// TestPrivateKeyPastedInChromium has an admin paste a private key in the
// real browser: the page refuses it and says to treat the key pair as
// exposed, and the key is in neither the database nor the logs.
func TestPrivateKeyPastedInChromium(t *testing.T) {
	t.Parallel()
	c := harness.Start(t, harness.Options{Dialect: models.SQLite})
	c.SeedDemo()
	b := c.Browser()
	signInAdmin(t, c, b)
	if st := b.Open(sshKeysPath); st != http.StatusOK {
		t.Fatalf("SSH keys page: %d", st)
	}
	if st := b.Click("#create-account"); st != http.StatusOK {
		t.Fatalf("create account: %d", st)
	}
	if st := b.Click("#upload-" + harness.DemoSlug + "-prod"); st != http.StatusOK {
		t.Fatalf("upload form: %d", st)
	}
	leaked := sftpKeygen(t, t.TempDir(), "id_ed25519", "-t", "ed25519")
	b.Fill("#public_key", string(leaked.priv))
	if st := b.Click("#upload-key"); st != http.StatusUnprocessableEntity {
		t.Fatalf("upload of a private key answered %d, want 422", st)
	}
	alert := b.Text("#upload-refusal")
	for _, want := range []string{"treat the key pair as exposed", "It was not stored", "generate a new key pair"} {
		if !strings.Contains(alert, want) {
			t.Errorf("refusal %q does not say %q", alert, want)
		}
	}
	if v := b.Value("#public_key"); v != "" {
		t.Errorf("the form shows the pasted text again (%d characters)", len(v))
	}
	assertNoFragment(t, leaked.priv, b.TextContent("body"), "the page")
	if evs := c.AuditEvents("ssh_key.private_key_refused"); len(evs) != 1 || evs[0].TargetName != harness.DemoSlug+"-prod" {
		t.Fatalf("refusal records %+v", evs)
	}
	var keys int64
	c.DB().Gorm.Model(&models.SSHKey{}).Count(&keys)
	if keys != 0 {
		t.Fatalf("%d keys stored", keys)
	}
	c.Stop()
	assertNoFragment(t, leaked.priv, dumpAll(t, c.DB()), "the database")
	assertNoFragment(t, leaked.priv, c.Logs(), "the server's logs")
}

// TestAuthorizedKeysRunsNoMigrations runs authorized-keys against an empty
// PostgreSQL database: it fails and leaves the database untouched.
func TestAuthorizedKeysRunsNoMigrations(t *testing.T) {
	t.Parallel()
	dbURL := modelstest.NewURL(t, models.Postgres)
	r := harness.Exec(t, map[string]string{"KEYCONSOLE_DATABASE_URL": dbURL, "KEYCONSOLE_DATA_DIR": t.TempDir()}, "authorized-keys", "demo-county-prod")
	if r.Code != 1 || r.Stdout != "" {
		t.Fatalf("authorized-keys on an empty database: exit %d, stdout %q", r.Code, r.Stdout)
	}
	db, err := models.Open(context.Background(), models.DBConfig{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	if err := db.Gorm.Raw("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	if len(tables) != 0 {
		t.Fatalf("authorized-keys created tables %v", tables)
	}
}

// TestAuthorizedKeysCommandWithSSHD runs a real OpenSSH sshd on 127.0.0.1
// whose only source of keys is `keyconsole authorized-keys %u`, for a
// throwaway system user named like the SFTP account. It needs root (to run
// sshd and add the user; scripts/test-deps.sh says so when it is not) and
// /usr/sbin/sshd (Debian openssh-server, which scripts/test-deps.sh installs).
func TestAuthorizedKeysCommandWithSSHD(t *testing.T) {
	const sshd = "/usr/sbin/sshd"
	if os.Geteuid() != 0 {
		t.Skip("needs root to run sshd and add a system user")
	}
	if _, err := os.Stat(sshd); err != nil {
		t.Fatalf("%s is required (Debian package openssh-server; `make test` installs it): %v", sshd, err)
	}
	for _, tool := range []string{"useradd", "userdel", "ssh-keygen", "sftp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required: %v", tool, err)
		}
	}
	t.Parallel()
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	slug := "kc" + hex.EncodeToString(suffix)
	user := slug + "-prod"

	c := harness.Start(t, harness.Options{Dialect: models.SQLite})
	c.MustCLI("agency", "create", slug, "--name", "SSHD Test")
	c.MustCLI("agency", "map", slug, "--provider", harness.ProviderID, "--group", slug+"-admins", "--role", "admin")
	admin := sftpSignIn(t, c, harness.User{Subject: "sshd-admin", Email: "admin@" + slug + ".example", EmailVerified: true, Name: "Sam Admin", Groups: []string{slug + "-admins"}})
	base := "/a/" + slug + "/ssh-keys"
	if r := admin.PostForm(base+"/accounts", url.Values{"_csrf": {sftpToken(t, admin, base)}, "environment": {"prod"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("create account: %d", r.Status)
	}
	var acc models.SFTPAccount
	if err := c.DB().Gorm.Where("name = ?", user).Take(&acc).Error; err != nil {
		t.Fatal(err)
	}
	uploadPath := fmt.Sprintf("%s/accounts/%d/upload", base, acc.ID)
	keys := t.TempDir()
	good := sftpKeygen(t, keys, "good", "-t", "ed25519")
	revoked := sftpKeygen(t, keys, "revoked", "-t", "ecdsa")
	stranger := sftpKeygen(t, keys, "stranger", "-t", "ed25519")
	sftpMustUpload(t, admin, uploadPath, upload{paste: string(good.pub)})
	sftpMustUpload(t, admin, uploadPath, upload{paste: string(revoked.pub)})
	rk := sftpKeyRecord(t, c, revoked)
	revokePath := fmt.Sprintf("%s/keys/%d/revoke", base, rk.ID)
	if r := admin.PostForm(revokePath, url.Values{"_csrf": {sftpToken(t, admin, revokePath)}}); r.Status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.Status)
	}

	home := t.TempDir()
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", home, "--shell", "/usr/sbin/nologin", "--password", "*", user).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", user, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", user).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", user, err, out)
		}
	})

	// sshd runs the command only from a path owned by root and writable by
	// nobody else, with an empty environment: a wrapper in such a directory
	// sets the console's variables and runs a copy of the binary.
	dir, err := os.MkdirTemp("/run", "keyconsole-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(harness.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keyconsole"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	var wrapper strings.Builder
	wrapper.WriteString("#!/bin/sh\n")
	for _, kv := range c.Env() {
		if strings.HasPrefix(kv, "KEYCONSOLE_") {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Fprintf(&wrapper, "export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
		}
	}
	fmt.Fprintf(&wrapper, "exec %s authorized-keys \"$1\"\n", filepath.Join(dir, "keyconsole"))
	command := filepath.Join(dir, "authorized-keys")
	if err := os.WriteFile(command, []byte(wrapper.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("host key: %v: %s", err, out)
	}
	if _, err := os.Stat("/run/sshd"); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove("/run/sshd") })
	}
	addr := freeLoopbackAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	config := strings.Join([]string{
		"ListenAddress 127.0.0.1",
		"Port " + port,
		"HostKey " + hostKey,
		"PidFile none",
		"AuthorizedKeysFile none",
		"AuthorizedKeysCommand " + command + " %u",
		"AuthorizedKeysCommandUser root",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"PermitRootLogin no",
		"AllowUsers " + user,
		"Subsystem sftp internal-sftp",
		"ForceCommand internal-sftp",
		"",
	}, "\n")
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sshd, "-t", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v: %s", err, out)
	}
	logs := &lockedBuffer{}
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfgPath)
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
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("sshd output:\n%s", logs.String())
		}
	})
	waitListening(t, addr, done)

	work := t.TempDir()
	known := filepath.Join(work, "known_hosts")
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(hostPub))
	if err := os.WriteFile(known, []byte(knownHostsLine(addr, f[0]+" "+f[1])), 0o600); err != nil {
		t.Fatal(err)
	}
	cl := sftpClient{t: t, dir: work, knownHosts: known}
	if out := cl.mustWork(addr, user, good, "pwd\n"); !strings.Contains(out, "Remote working directory:") {
		t.Fatalf("sshd session: %s", out)
	}
	cl.mustBeRefused(addr, user, revoked)
	cl.mustBeRefused(addr, user, stranger)
	accepted := "Accepted publickey for " + user + " from 127.0.0.1"
	if n := strings.Count(logs.String(), accepted); n != 1 || !strings.Contains(logs.String(), ssh.FingerprintSHA256(good.key)) {
		t.Errorf("sshd accepted %d logins, want 1 with %s", n, ssh.FingerprintSHA256(good.key))
	}
}
