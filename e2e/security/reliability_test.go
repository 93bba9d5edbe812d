package security

import (
	"bufio"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"keyconsole/e2e/harness"
	"keyconsole/kms/kmstest"
	"keyconsole/services/audit"
)

// unknownClientID has the shape of a generated client_id; no credential has it.
const unknownClientID = "ecd_stg_aaaaaaaaaaaaaaaaaaaa"

// refusals sums the "count" detail of the records of action whose detail
// key equals value.
func refusals(t *testing.T, c *harness.Console, action, key, value string) int {
	t.Helper()
	n := 0
	for _, ev := range c.AuditEvents(action) {
		d := map[string]string{}
		for _, kv := range audit.DecodeDetails(ev.Details) {
			d[kv[0]] = kv[1]
		}
		match := d[key] == value
		if key == "" {
			match = ev.TargetName == value
		}
		if !match {
			continue
		}
		c, err := strconv.Atoi(d["count"])
		if err != nil {
			t.Fatalf("%s record without a count: %+v", action, ev)
		}
		n += c
	}
	return n
}

// TestFault01_SIGKILLKeepsTheFirstRefusal kills the real binary right after
// it answered a refused token request (a known client with a wrong secret
// and an unknown client) and a refused SFTP key: each refusal's audit record
// is in the database after the crash, and counted once after a restart.
func TestFault01_SIGKILLKeepsTheFirstRefusal(t *testing.T) {
	requireLong(t)
	t.Parallel()
	c := harness.Start(t, harness.Options{SFTP: true})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	cred := createAPICredential(t, admin, harness.DemoSlug, "Crash sync", "staging")
	_, account := createSFTPAccount(t, admin, c, harness.DemoSlug, "stg")

	if r := requestToken(t, c.Client(), cred.ClientID, "ecd_stg_sk_not-the-secret"); r.Status != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d %+v", r.Status, r)
	}
	if r := requestToken(t, c.Client(), unknownClientID, "whatever"); r.Status != http.StatusUnauthorized {
		t.Fatalf("unknown client: %d %+v", r.Status, r)
	}
	if res := sftpLogin(c.SFTPAddr, "", account, newSSHSigner(t)); res.Err == nil || res.Listed {
		t.Fatalf("a key nobody uploaded logged in: %+v", res)
	}
	c.Kill()

	check := func(when string) {
		t.Helper()
		if n := refusals(t, c, audit.ActionAPICredentialTokenRefused, "client_id", cred.ClientID); n != 1 {
			t.Errorf("%s: refused token requests of %s audited: %d, want 1", when, cred.ClientID, n)
		}
		if n := refusals(t, c, audit.ActionAPICredentialTokenRefused, "client_id", unknownClientID); n != 1 {
			t.Errorf("%s: refused token requests of the unknown client audited: %d, want 1", when, n)
		}
		if n := refusals(t, c, audit.ActionSFTPLoginRefused, "", account); n != 1 {
			t.Errorf("%s: refused SFTP keys of %s audited: %d, want 1", when, account, n)
		}
	}
	check("after SIGKILL")
	c.Restart()
	c.Stop()
	check("after a restart and a graceful stop")
	verifyAudit(t, c)
}

// TestFault01_SIGTERMWritesTheRepeatsSummary stops the real binary with
// SIGTERM while a refused token request is still being received: the
// listener closes first, the request is answered, and the shutdown then
// writes the summary of the repeated refusals, that one included.
func TestFault01_SIGTERMWritesTheRepeatsSummary(t *testing.T) {
	requireLong(t)
	t.Parallel()
	c := harness.Start(t, harness.Options{})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	cred := createAPICredential(t, admin, harness.DemoSlug, "Stop sync", "staging")
	const wrong = "ecd_stg_sk_not-the-secret"
	for i := range 3 {
		if r := requestToken(t, c.Client(), cred.ClientID, wrong); r.Status != http.StatusUnauthorized {
			t.Fatalf("refusal %d: %d %+v", i, r.Status, r)
		}
	}

	// A request whose body is still on its way when SIGTERM arrives: with
	// "Expect: 100-continue" the server says "100 Continue" once its handler
	// reads the body, so the request is under way before the signal.
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()
	conn, err := net.DialTimeout("tcp", c.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cred.ClientID) + ":" + url.QueryEscape(wrong)))
	head := "POST /oauth/token HTTP/1.1\r\nHost: " + c.Addr + "\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Authorization: Basic " + basic + "\r\nExpect: 100-continue\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	interim, err := http.ReadResponse(rd, nil)
	if err != nil || interim.StatusCode != http.StatusContinue {
		t.Fatalf("no 100 Continue for the request's body: %v %v", interim, err)
	}
	c.Signal(syscall.SIGTERM)
	eventually(t, 20*time.Second, "the listener closes after SIGTERM", func() bool {
		probe, err := net.DialTimeout("tcp", c.Addr, time.Second)
		if err != nil {
			return true
		}
		_ = probe.Close()
		return false
	})
	if _, err := conn.Write([]byte(body)); err != nil {
		t.Fatalf("finish the request during shutdown: %v", err)
	}
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("the request in flight at SIGTERM got no answer: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the request in flight at SIGTERM: %d, want 401", resp.StatusCode)
	}
	if !c.WaitExit(20 * time.Second) {
		t.Fatal("keyconsole did not exit after SIGTERM")
	}
	if n := refusals(t, c, audit.ActionAPICredentialTokenRefused, "client_id", cred.ClientID); n != 4 {
		t.Errorf("refused token requests audited after a graceful stop: %d, want 4", n)
	}
	if !strings.Contains(c.Logs(), "keyconsole stopped") {
		t.Errorf("no clean stop in the log")
	}
	verifyAudit(t, c)
}

// TestFault01_KMSRefusalsAreAudited restarts the console while KMS is down
// (so the API-secret pepper cannot be opened) and tries every security
// action that needs it: each answers the clear 503, changes nothing, and
// leaves an audit record of the refused attempt.
func TestFault01_KMSRefusalsAreAudited(t *testing.T) {
	requireLong(t)
	k := kmstest.Start(t)
	c := harness.Start(t, harness.Options{Env: kmsEnv(k)})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	cred := createAPICredential(t, admin, harness.DemoSlug, "Outage audited", "staging")
	h := createWebhook(t, admin, c, harness.DemoSlug, "Outage audited hook", "https://receiver.demo-county.example/hook", "OutageSecret0123456789ab")
	k.Stop(t)
	c.Restart()
	admin = signedIn(t, c, harness.AdminUser())
	before := map[string]int64{}
	for _, tbl := range []string{"api_credentials", "webhook_endpoints", "sealed_secrets"} {
		before[tbl] = count(t, c, "SELECT COUNT(*) FROM "+tbl)
	}
	secretVersion := count(t, c, "SELECT secret_version FROM api_credentials WHERE id = ?", cred.ID)

	unavailable := func(what string, r harness.Response) {
		t.Helper()
		if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "Encryption is unavailable") {
			t.Errorf("%s with KMS down: %d\n%s", what, r.Status, mainOf(r))
		}
	}
	page := admin.Get("/a/" + harness.DemoSlug + "/api-credentials/new")
	unavailable("create an API credential", admin.PostForm("/a/"+harness.DemoSlug+"/api-credentials",
		form("_csrf", csrfOf(page.Body), "nonce", inputValue(page.Body, "nonce"), "name", "Born in outage", "environment", "staging")))
	unavailable("regenerate an API credential", regenerateAPICredential(t, admin, harness.DemoSlug, cred))
	page = admin.Get("/a/" + harness.DemoSlug + "/webhooks/new")
	unavailable("create a webhook", admin.PostForm("/a/"+harness.DemoSlug+"/webhooks", form("_csrf", csrfOf(page.Body), "name", "Hook born in outage",
		"environment", "staging", "url", "https://receiver.demo-county.example/b", "events", "court_date.scheduled", "secret_source", "generate")))
	unavailable("set a webhook secret", setWebhookSecret(t, admin, harness.DemoSlug, h, "NewOutageSecret012345678", "0"))
	unavailable("reveal a webhook secret", revealWebhook(t, admin, harness.DemoSlug, h))

	for tbl, n := range before {
		if got := count(t, c, "SELECT COUNT(*) FROM "+tbl); got != n {
			t.Errorf("%s: %d rows after refused actions, %d before", tbl, got, n)
		}
	}
	if v := count(t, c, "SELECT secret_version FROM api_credentials WHERE id = ?", cred.ID); v != secretVersion {
		t.Errorf("the refused regeneration changed the secret version: %d, was %d", v, secretVersion)
	}
	for _, want := range []struct{ action, target string }{
		{audit.ActionAPICredentialCreate, "Born in outage"},
		{audit.ActionAPICredentialRegenerate, cred.Name},
		{audit.ActionWebhookCreate, "Hook born in outage"},
		{audit.ActionWebhookSecretRotate, h.Name},
		{audit.ActionWebhookSecretReveal, h.Name},
	} {
		found := false
		for _, ev := range c.AuditEvents(want.action) {
			if ev.TargetName == want.target && ev.Outcome == audit.OutcomeFailure && ev.Reason == "kms_unavailable" && ev.ActorType == audit.ActorUser {
				found = true
			}
		}
		if !found {
			t.Errorf("no refused %s record for %q (outcome failure, reason kms_unavailable)", want.action, want.target)
		}
	}
	var leaked int64
	if err := c.DB().Gorm.Raw("SELECT COUNT(*) FROM audit_events WHERE details LIKE ? OR details LIKE ?", "%NewOutageSecret%", "%OutageSecret0123%").Scan(&leaked).Error; err != nil || leaked != 0 {
		t.Errorf("a typed webhook secret is in the audit log: %d (%v)", leaked, err)
	}
	k.Restart(t)
	verifyAudit(t, c)
}

// smallFS mounts a tmpfs of the given size (mount(8) syntax, "8m") on a
// fresh directory for the test and unmounts it afterwards. It needs root;
// without it the test is skipped.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a full disk is made with a small tmpfs, which needs root: mount: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fillFS writes a file into dir until its file system has no byte left,
// and returns the file's path.
func fillFS(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range []int{1 << 20, 64 << 10, 4 << 10, 512, 1} {
		buf := make([]byte, n)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", dir, err)
				}
				break
			}
		}
	}
	return path
}

// TestFault03_FullDiskSaysSo runs the real binary on a SQLite database on
// a small tmpfs and fills it: every write (a form, a sign-in) answers 503
// "storage is full; nothing was changed" and writes nothing, the episode is
// logged once with the error, /readyz reports that the database cannot
// write, whatever needs no write keeps working (token issuance), and all of
// it recovers, without a restart, once space is freed.
func TestFault03_FullDiskSaysSo(t *testing.T) {
	requireLong(t)
	dir := smallFS(t, "16m")
	c := harness.Start(t, harness.Options{SQLitePath: filepath.Join(dir, "keyconsole.db")})
	seedAgencies(c)
	admin := signedIn(t, c, harness.AdminUser())
	cred := createAPICredential(t, admin, harness.DemoSlug, "Full disk sync", "staging")
	if r := admin.Get("/readyz"); r.Status != http.StatusOK {
		t.Fatalf("/readyz before the disk fills: %d %s", r.Status, r.Body)
	}
	page := admin.Get("/a/" + harness.DemoSlug + "/api-credentials/new")
	// An empty write-ahead log: the next write must grow a file, as it
	// does on a disk that filled up while the console ran.
	if err := c.DB().Gorm.Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error; err != nil {
		t.Fatal(err)
	}
	filler := fillFS(t, dir)
	tables := []string{"api_credentials", "audit_events", "users", "sessions"}
	before := map[string]int64{}
	for _, tbl := range tables {
		before[tbl] = count(t, c, "SELECT COUNT(*) FROM "+tbl)
	}

	full := func(what string, r harness.Response) {
		t.Helper()
		if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "storage is full; nothing was changed") {
			t.Errorf("%s on a full disk: %d, want 503 saying storage is full\n%s", what, r.Status, mainOf(r))
		}
		if strings.Contains(r.Body, "disk is full") || strings.Contains(r.Body, "SQLITE") {
			t.Errorf("%s on a full disk shows the database's error text", what)
		}
	}
	for i := range 3 {
		full("create an API credential", admin.PostForm("/a/"+harness.DemoSlug+"/api-credentials",
			form("_csrf", csrfOf(page.Body), "nonce", inputValue(page.Body, "nonce"), "name", "Born on a full disk "+strconv.Itoa(i), "environment", "staging")))
	}
	full("start a sign-in", harness.NewClient(t, c.URL).Get("/auth/login/"+harness.ProviderID))
	if r := requestToken(t, c.Client(), cred.ClientID, cred.Secret); r.Status != http.StatusOK {
		t.Errorf("token issuance needs no write, yet on a full disk: %d %+v", r.Status, r)
	}
	eventually(t, 30*time.Second, "/readyz reports the database cannot write", func() bool {
		r := admin.Get("/readyz")
		return r.Status == http.StatusServiceUnavailable && strings.Contains(r.Body, `"database_write":"unavailable"`)
	})
	for _, tbl := range tables {
		if got := count(t, c, "SELECT COUNT(*) FROM "+tbl); got != before[tbl] {
			t.Errorf("%s: %d rows after refused writes, %d before", tbl, got, before[tbl])
		}
	}
	var episodes []string
	for _, line := range strings.Split(c.Logs(), "\n") {
		if strings.Contains(line, `"msg":"database storage is full`) {
			episodes = append(episodes, line)
		}
	}
	if len(episodes) != 1 || !strings.Contains(episodes[0], "full") || !strings.Contains(episodes[0], `"level":"ERROR"`) {
		t.Errorf("storage-full log lines: %d, want one error naming the cause:\n%s", len(episodes), strings.Join(episodes, "\n"))
	}
	if strings.Contains(c.Logs(), `"status":500`) {
		t.Errorf("a request answered 500 on a full disk")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "/readyz after space is freed", func() bool { return admin.Get("/readyz").Status == http.StatusOK })
	createAPICredential(t, admin, harness.DemoSlug, "After the full disk", "staging")
	signedIn(t, c, harness.ReviewerUser())
	verifyAudit(t, c)
}
