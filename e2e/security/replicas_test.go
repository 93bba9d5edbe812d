package security

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"keyconsole/e2e/harness"
	"keyconsole/models"
)

// startReplicas runs two consoles on one PostgreSQL database with the same
// session keys and master key, each with its own data directory, HTTP and
// SFTP address: two stateless replicas behind a load balancer.
func startReplicas(t *testing.T) (a, b *harness.Console) {
	t.Helper()
	master := filepath.Join(t.TempDir(), "master.key")
	env := map[string]string{"KEYCONSOLE_LOCAL_MASTER_KEY_FILE": master}
	a = harness.Start(t, harness.Options{Dialect: models.Postgres, SFTP: true, Env: env})
	seedAgencies(a)
	envB := map[string]string{"KEYCONSOLE_LOCAL_MASTER_KEY_FILE": master, "KEYCONSOLE_DATABASE_URL": a.DatabaseURL}
	b = harness.Start(t, harness.Options{Dialect: models.Postgres, SFTP: true, Env: envB})
	return a, b
}

// TestTwoReplicasShareSessionsRevocationsKeysAndOneAuditChain: a session
// started on one replica works on the other; a credential revoked on one is
// refused by the other's token endpoint at once; both SFTP servers accept
// the same key and present the same host key; tokens of either verify with
// either's keys; and concurrent writes through both keep each audit chain
// linear.
func TestTwoReplicasShareSessionsRevocationsKeysAndOneAuditChain(t *testing.T) {
	requireLong(t)
	t.Parallel()
	a, b := startReplicas(t)
	dash := "/a/" + harness.DemoSlug + "/"

	t.Run("session", func(t *testing.T) {
		onA := signedIn(t, a, harness.AdminUser())
		onB := harness.NewClient(t, b.URL)
		onB.SetCookies(onA.Cookies())
		if r := onB.Get(dash); r.Status != http.StatusOK {
			t.Fatalf("a session started on replica A is refused by replica B: %d %s", r.Status, r.Location())
		}
		// Signing out on B ends the session on A too.
		tok := csrfOf(onB.Get(dash).Body)
		if r := onB.PostForm("/auth/signout", form("_csrf", tok)); r.Status != http.StatusSeeOther {
			t.Fatalf("sign-out on B: %d", r.Status)
		}
		if r := onA.Get(dash); classify(r) != "signin" {
			t.Fatalf("a session ended on replica B still works on replica A: %d", r.Status)
		}
	})

	adminA := signedIn(t, a, harness.AdminUser())
	adminB := harness.NewClient(t, b.URL)
	adminB.SetCookies(adminA.Cookies())

	t.Run("revocation", func(t *testing.T) {
		cred := createAPICredential(t, adminA, harness.DemoSlug, "Replicated sync", "production")
		for _, c := range []*harness.Console{a, b} {
			if r := requestToken(t, uniqueSource(t, c.URL), cred.ClientID, cred.Secret); r.Status != http.StatusOK {
				t.Fatalf("token from %s before revocation: %+v", c.URL, r)
			}
		}
		revokeAPICredential(t, adminA, harness.DemoSlug, cred)
		if r := requestToken(t, uniqueSource(t, b.URL), cred.ClientID, cred.Secret); r.Status != http.StatusUnauthorized || r.Error != "invalid_client" {
			t.Fatalf("replica B after revocation on A: %d %q", r.Status, r.Error)
		}
		// And the other way round, after a regeneration on B.
		cred2 := createAPICredential(t, adminB, harness.DemoSlug, "Replicated sync two", "staging")
		if r := requestToken(t, uniqueSource(t, a.URL), cred2.ClientID, cred2.Secret); r.Status != http.StatusOK {
			t.Fatalf("replica A with a credential made on B: %+v", r)
		}
		reg := regenerateAPICredential(t, adminB, harness.DemoSlug, cred2)
		if reg.Status != http.StatusOK {
			t.Fatalf("regenerate on B: %d", reg.Status)
		}
		if r := requestToken(t, uniqueSource(t, a.URL), cred2.ClientID, cred2.Secret); r.Status != http.StatusUnauthorized {
			t.Fatalf("replica A accepts the secret regenerated away on B: %d", r.Status)
		}
		if r := requestToken(t, uniqueSource(t, a.URL), cred2.ClientID, secretOf(t, reg)); r.Status != http.StatusOK {
			t.Fatalf("replica A refuses the new secret made on B: %+v", r)
		}
	})

	t.Run("signing keys", func(t *testing.T) {
		ja, jb := a.Client().Get("/.well-known/jwks.json"), b.Client().Get("/.well-known/jwks.json")
		if ja.Status != http.StatusOK || ja.Body != jb.Body {
			t.Fatalf("the replicas publish different key sets:\nA: %s\nB: %s", ja.Body, jb.Body)
		}
	})

	t.Run("sftp", func(t *testing.T) {
		account, name := createSFTPAccount(t, adminA, a, harness.DemoSlug, "prod")
		key := newSSHSigner(t)
		uploadSSHKey(t, adminB, a, harness.DemoSlug, account, key.PublicKey(), "replicated-key")
		ra := sftpLogin(a.SFTPAddr, "", name, key)
		rb := sftpLogin(b.SFTPAddr, "", name, key)
		if !ra.Listed || !rb.Listed {
			t.Fatalf("SFTP login with the uploaded key: replica A %v, replica B %v", ra.Err, rb.Err)
		}
		if !bytes.Equal(ra.HostKey.Marshal(), rb.HostKey.Marshal()) {
			t.Fatalf("the replicas present different host keys")
		}
		stranger := newSSHSigner(t)
		for _, addr := range []string{a.SFTPAddr, b.SFTPAddr} {
			if r := sftpLogin(addr, "", name, stranger); r.Err == nil {
				t.Fatalf("SFTP on %s accepted an unknown key", addr)
			}
		}
	})

	t.Run("audit chain under concurrent writes", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 10; i++ {
			for side, cl := range map[string]*harness.Client{"A": adminA, "B": adminB} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					page, err := rawGet(cl, "/a/"+harness.DemoSlug+"/api-credentials/new")
					if err != nil || page.Status != http.StatusOK {
						errs <- fmt.Errorf("new form on %s: %v %d", side, err, page.Status)
						return
					}
					r, err := rawPost(cl, "/a/"+harness.DemoSlug+"/api-credentials", form("_csrf", csrfOf(page.Body), "nonce", inputValue(page.Body, "nonce"),
						"name", "Concurrent "+side+strconv.Itoa(i), "environment", "staging"))
					if err != nil || r.Status != http.StatusOK {
						errs <- fmt.Errorf("create on %s: %v %d", side, err, r.Status)
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var seqs []int64
		if err := a.DB().Gorm.Raw("SELECT seq FROM audit_events WHERE agency_id = ? ORDER BY seq", agencyIDOf(t, a, harness.DemoSlug)).Scan(&seqs).Error; err != nil {
			t.Fatal(err)
		}
		for i, s := range seqs {
			if s != int64(i)+seqs[0] {
				t.Fatalf("audit sequence of Demo County is not linear at position %d: %d", i, s)
			}
		}
		verifyAudit(t, a)
		verifyAudit(t, b)
	})
}
