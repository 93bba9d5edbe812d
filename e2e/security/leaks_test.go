package security

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"keyconsole/e2e/harness"
)

// canaries are secret values a flow produced or used, by name.
type canaries map[string]string

// forms returns the encodings a secret could leak in: as is, URL- and
// HTML-escaped, JSON-quoted, base64 (standard and URL) and hex.
func (c canaries) forms() map[string]string {
	out := map[string]string{}
	for name, v := range c {
		if len(v) < 12 {
			panic("canary " + name + " is too short to search for")
		}
		out[name] = v
		out[name+" (url-escaped)"] = url.QueryEscape(v)
		out[name+" (html-escaped)"] = html.EscapeString(v)
		q, _ := json.Marshal(v)
		out[name+" (json)"] = strings.Trim(string(q), `"`)
		out[name+" (base64)"] = strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(v)), "=")
		out[name+" (base64url)"] = base64.RawURLEncoding.EncodeToString([]byte(v))
		out[name+" (hex)"] = hex.EncodeToString([]byte(v))
	}
	return out
}

// hits lists the canaries found in text, as "what: canary".
func (c canaries) hits(what string, text []byte) []string {
	var out []string
	for name, form := range c.forms() {
		if form != "" && bytes.Contains(text, []byte(form)) {
			out = append(out, what+": "+name)
		}
	}
	sort.Strings(out)
	return out
}

// privateKeyPEM returns a fresh ECDSA private key in PEM form and the
// base64 body that identifies it.
func privateKeyPEM(t *testing.T) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	body := base64.StdEncoding.EncodeToString(der)
	return p, body[20:60]
}

var hrefs = regexp.MustCompile(`href="(/[^"#]*)"`)

// crawl fetches every same-origin page reachable by links from the start
// pages (GET only, at most limit pages) and returns them by path.
func crawl(t *testing.T, cl *harness.Client, start []string, limit int) map[string][]byte {
	t.Helper()
	pages := map[string][]byte{}
	queue := append([]string(nil), start...)
	seen := map[string]bool{}
	for len(queue) > 0 && len(pages) < limit {
		p := queue[0]
		queue = queue[1:]
		if seen[p] || strings.HasPrefix(p, "/auth/") || strings.HasPrefix(p, "/static/") {
			continue
		}
		seen[p] = true
		r := cl.Get(p)
		pages[p] = []byte(r.Body)
		if r.Status >= 500 {
			t.Errorf("crawl: GET %s answered %d", p, r.Status)
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			continue
		}
		for _, m := range hrefs.FindAllStringSubmatch(r.Body, -1) {
			queue = append(queue, html.UnescapeString(m[1]))
		}
	}
	return pages
}

// TestNoSecretLeaks runs every flow that handles a secret with known
// canary values (API secrets created and regenerated, a pasted private key,
// webhook secrets set, rotated and revealed, token requests right and
// wrong, access tokens, SFTP logins, signed deliveries, audit and inventory
// exports), then searches every log line, every audit record, every
// exported file, every page reachable afterwards (as admin and as
// reviewer), the whole database and the data directory for them, in every
// common encoding: zero hits.
func TestNoSecretLeaks(t *testing.T) {
	requireLong(t)
	t.Parallel()
	receiver := newSignatureReceiver(t)
	metricsToken := "canary-metrics-token-" + strings.Repeat("m", 20)
	c := harness.Start(t, harness.Options{SFTP: true, Env: map[string]string{
		"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
		"KEYCONSOLE_METRICS_TOKEN":         metricsToken,
	}})
	seedAgencies(c)
	secret := canaries{
		"session key":          harness.SessionKeys,
		"OIDC client secret":   c.IdP.Config().ClientSecret,
		"metrics bearer token": metricsToken,
	}
	admin := signedIn(t, c, harness.AdminUser())
	reviewer := signedIn(t, c, harness.ReviewerUser())
	slug := harness.DemoSlug

	// API credentials: create, regenerate, revoke; token requests.
	cred := createAPICredential(t, admin, slug, "Leak sync", "production")
	secret["API secret (created)"] = cred.Secret
	reg := regenerateAPICredential(t, admin, slug, cred)
	if reg.Status != http.StatusOK {
		t.Fatalf("regenerate: %d", reg.Status)
	}
	current := secretOf(t, reg)
	secret["API secret (regenerated)"] = current
	spare := createAPICredential(t, admin, slug, "Leak spare", "staging")
	secret["API secret (revoked)"] = spare.Secret
	revokeAPICredential(t, admin, slug, spare)
	tok := requestToken(t, uniqueSource(t, c.URL), cred.ClientID, current)
	if tok.Status != http.StatusOK {
		t.Fatalf("token: %+v", tok)
	}
	secret["access token"] = tok.AccessToken
	wrong := "canary-wrong-client-secret-" + strings.Repeat("w", 20)
	secret["wrong client secret"] = wrong
	for _, s := range []string{wrong, cred.Secret} {
		if r := requestToken(t, uniqueSource(t, c.URL), cred.ClientID, s); r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %+v", r)
		}
	}
	// client_secret_post, and a secret sent in the URL (refused).
	post := c.Client()
	post.PostForm("/oauth/token", form("grant_type", "client_credentials", "client_id", cred.ClientID, "client_secret", current))
	inURL := "canary-secret-in-the-url-" + strings.Repeat("u", 20)
	secret["client secret in a URL"] = inURL
	if r := post.PostForm("/oauth/token?client_secret="+inURL, form("grant_type", "client_credentials", "client_id", cred.ClientID)); r.Status < 400 {
		t.Fatalf("a secret in the URL was accepted: %d", r.Status)
	}

	// A personnel change rotates a credential and shows its new secret once.
	pc := createAPICredential(t, admin, slug, "Leak personnel", "staging")
	var ada int64
	if err := c.DB().Gorm.Raw("SELECT id FROM users WHERE subject = ?", harness.AdminUser().Subject).Scan(&ada).Error; err != nil || ada == 0 {
		t.Fatalf("admin's user id: %v", err)
	}
	review := "/a/" + slug + "/personnel/" + strconv.FormatInt(ada, 10)
	rp := admin.Get(review)
	if rp.Status != http.StatusOK {
		t.Fatalf("personnel review: %d", rp.Status)
	}
	rotated := admin.PostForm(review, form("_csrf", csrfOf(rp.Body), "action.api_credential:"+strconv.FormatInt(pc.ID, 10), "rotate",
		"confirm", slug, "reason", "leak test"))
	m := regexp.MustCompile(`id="new-secret-0">([^<]+)<`).FindStringSubmatch(rotated.Body)
	if rotated.Status != http.StatusOK || m == nil {
		t.Fatalf("personnel rotation: %d\n%s", rotated.Status, mainOf(rotated))
	}
	secret["API secret (personnel rotation)"] = html.UnescapeString(strings.TrimSpace(m[1]))

	// SSH keys: a pasted private key is refused; SFTP logins right and wrong.
	account, accountName := createSFTPAccount(t, admin, c, slug, "prod")
	pemKey, pemBody := privateKeyPEM(t)
	secret["pasted private key"] = pemBody
	upload := "/a/" + slug + "/ssh-keys/accounts/" + strconv.FormatInt(account, 10) + "/upload"
	page := admin.Get(upload)
	if r := admin.PostForm(upload, form("_csrf", csrfOf(page.Body), "public_key", pemKey)); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("pasted private key: %d", r.Status)
	}
	key := newSSHSigner(t)
	uploadSSHKey(t, admin, c, slug, account, key.PublicKey(), "leak-key")
	if r := sftpLogin(c.SFTPAddr, "", accountName, key); !r.Listed {
		t.Fatalf("sftp login: %v", r.Err)
	}
	if r := sftpLogin(c.SFTPAddr, "", accountName, newSSHSigner(t)); r.Err == nil {
		t.Fatalf("sftp accepted an unknown key")
	}

	// Webhooks: typed secret, rotation with overlap, test deliveries, reveal.
	w1, w2 := "CanaryHookOne0123456789", "CanaryHookTwo9876543210"
	secret["webhook secret (first)"], secret["webhook secret (rotated)"] = w1, w2
	secret["webhook secret whsec form"] = "whsec_" + base64.StdEncoding.EncodeToString([]byte(w2))
	h := createWebhook(t, admin, c, slug, "Leak hook", receiver.url, w1)
	if r := setWebhookSecret(t, admin, slug, h, w2, "24"); r.Status != http.StatusOK {
		t.Fatalf("rotate webhook secret: %d\n%s", r.Status, mainOf(r))
	}
	hp := admin.Get(hookPath(slug, h, ""))
	if r := admin.PostForm(hookPath(slug, h, "/test"), form("_csrf", csrfOf(hp.Body))); r.Status != http.StatusSeeOther {
		t.Fatalf("test event: %d", r.Status)
	}
	if r := revealWebhook(t, admin, slug, h); webhookSecretOf(r) != w2 {
		t.Fatalf("reveal: %d", r.Status)
	}
	hp = admin.Get(hookPath(slug, h, ""))
	if r := admin.PostForm(hookPath(slug, h, "/end-rotation"), form("_csrf", csrfOf(hp.Body))); r.Status != http.StatusSeeOther {
		t.Fatalf("end rotation: %d", r.Status)
	}
	eventually(t, 20*time.Second, "a signed test delivery", func() bool { return len(receiver.all()) > 0 })
	for _, d := range receiver.all() {
		if got := secret.hits("webhook delivery body", d.Body); len(got) > 0 {
			t.Errorf("%v", got)
		}
	}

	// Exports, over HTTP as the reviewer and through the CLI.
	exports := map[string][]byte{}
	for _, p := range []string{"/audit/export.csv", "/audit/export.jsonl", "/audit/export.pdf", "/reports/inventory.csv", "/reports/inventory.pdf"} {
		r := reviewer.Get("/a/" + slug + p)
		if r.Status != http.StatusOK {
			t.Errorf("export %s: %d", p, r.Status)
			continue
		}
		exports[p] = []byte(r.Body)
		if strings.HasSuffix(p, ".pdf") {
			exports[p+" (text)"] = pdfText(t, []byte(r.Body))
		}
	}
	for _, f := range []string{"csv", "jsonl", "pdf"} {
		out := filepath.Join(t.TempDir(), "audit."+f)
		c.MustCLI("audit", "export", "--agency", slug, "--format", f, "--output", out)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		exports["keyconsole audit export --format "+f] = b
	}

	// Every page reachable afterwards, as the admin and as the reviewer.
	start := []string{"/a/" + slug + "/", "/a/" + slug + "/api-credentials", "/a/" + slug + "/ssh-keys", "/a/" + slug + "/webhooks",
		"/a/" + slug + "/audit", "/a/" + slug + "/reports", "/a/" + slug + "/policy", "/a/" + slug + "/hygiene", "/a/" + slug + "/personnel"}
	var found []string
	for who, cl := range map[string]*harness.Client{"admin": admin, "reviewer": reviewer} {
		pages := crawl(t, cl, start, 400)
		if len(pages) < 20 {
			t.Errorf("the crawl as %s reached only %d pages", who, len(pages))
		}
		for p, body := range pages {
			found = append(found, secret.hits("page "+p+" as "+who, body)...)
		}
	}
	found = append(found, secret.hits("metrics", []byte(c.Client().Do(bearer(t, c.URL+"/metrics", metricsToken)).Body))...)
	for name, b := range exports {
		found = append(found, secret.hits("export "+name, b)...)
	}

	// Logs, audit records, the database and the data directory.
	c.Stop()
	found = append(found, secret.hits("server log", []byte(c.Logs()))...)
	found = append(found, secret.hits("audit records", auditDump(t, c))...)
	found = append(found, secret.hits("database dump", databaseDump(t, c))...)
	_ = filepath.WalkDir(c.DataDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read %s: %v", p, err)
			return nil
		}
		rel, _ := filepath.Rel(c.DataDir, p)
		found = append(found, secret.hits("data file "+rel, b)...)
		return nil
	})
	// The search itself works: a public value the flows wrote everywhere
	// is found everywhere.
	for _, ctl := range []struct {
		what, public string
		text         []byte
	}{
		{"audit records", cred.ClientID, auditDump(t, c)},
		{"database dump", cred.ClientID, databaseDump(t, c)},
		{"CSV export", cred.ClientID, exports["/audit/export.csv"]},
		{"PDF export text", harness.ReviewerUser().Name, exports["/audit/export.pdf (text)"]},
	} {
		if len(canaries{"public value": ctl.public}.hits(ctl.what, ctl.text)) == 0 {
			t.Errorf("the search does not find the public value %q in the %s", ctl.public, ctl.what)
		}
	}
	if len(found) > 0 {
		t.Fatalf("secrets leaked (%d):\n  %s", len(found), strings.Join(found, "\n  "))
	}
}

func bearer(t *testing.T, u, token string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// pdfText extracts the text of a PDF with pdftotext (poppler-utils, which
// CI installs), so compressed content streams are searched too.
func pdfText(t *testing.T, pdf []byte) []byte {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Fatalf("pdftotext is required to search PDF exports: apt-get install -y poppler-utils")
	}
	in := filepath.Join(t.TempDir(), "export.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-q", in, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return out
}

// auditDump is every audit record of every chain, as JSON lines.
func auditDump(t *testing.T, c *harness.Console) []byte {
	t.Helper()
	var rows []map[string]any
	if err := c.DB().Gorm.Raw("SELECT * FROM audit_events ORDER BY id").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) < 20 {
		t.Fatalf("only %d audit records after every flow", len(rows))
	}
	var buf bytes.Buffer
	for _, r := range rows {
		b, _ := json.Marshal(r)
		buf.Write(append(b, '\n'))
	}
	return buf.Bytes()
}

// databaseDump is every row of every table (SQLite), plus the raw database
// files, so nothing written anywhere escapes the search.
func databaseDump(t *testing.T, c *harness.Console) []byte {
	t.Helper()
	var tables []string
	if err := c.DB().Gorm.Raw("SELECT name FROM sqlite_master WHERE type = 'table'").Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, tb := range tables {
		rows, err := c.DB().SQL().Query(`SELECT * FROM "` + tb + `"`)
		if err != nil {
			t.Fatalf("dump %s: %v", tb, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump %s: %v", tb, err)
			}
			fmt.Fprintf(&buf, "%s:", tb)
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&buf, " %s=%v", cols[i], v)
			}
			buf.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump %s: %v", tb, err)
		}
		_ = rows.Close()
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if b, err := os.ReadFile(c.DatabaseURL + suffix); err == nil {
			buf.Write(b)
		}
	}
	return buf.Bytes()
}
