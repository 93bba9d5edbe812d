package sshkeys

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
)

// openSession logs in to account with key through x/crypto/ssh and opens an
// SFTP session on it.
func openSession(t *testing.T, addr, account string, key goKey) *sftp.Client {
	t.Helper()
	conn, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: account, Auth: []ssh.AuthMethod{ssh.PublicKeys(key.signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("login of %s: %v", account, err)
	}
	c, err := sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		t.Fatalf("sftp session of %s: %v", account, err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// put uploads a small file through an open session.
func put(c *sftp.Client, name string) error {
	f, err := c.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte("payload\n")); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// waitEnded polls until an upload through c fails, or fails the test after
// a generous deadline.
func waitEnded(t *testing.T, c *sftp.Client, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		if err := put(c, fmt.Sprintf("after-%d.txt", i)); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: uploads still succeed 60 s later", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFinding08_RevokedOrExpiredKeyEndsOpenSessions opens SFTP sessions on
// one replica, then revokes a key through the service of another replica
// (its own connection pool on the same database) and lets another key's
// expiry date pass: the sessions opened with those keys end, while the
// session of a key still valid keeps working.
func TestFinding08_RevokedOrExpiredKeyEndsOpenSessions(t *testing.T) {
	for _, d := range modelstest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			url := modelstest.NewURL(t, d)
			master := make([]byte, local.MasterKeySize)
			if _, err := rand.Read(master); err != nil {
				t.Fatal(err)
			}
			serving, other := newReplica(t, url, master), newReplica(t, url, master)
			if _, err := serving.db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, serving.db)
			a := newAuthenticator(t, f, AuthConfig{})
			addr, _ := startSFTP(t, sftpdAuth{a})

			revoked, expiring, kept := newGoKey(t, "revoked"), newGoKey(t, "expiring"), newGoKey(t, "kept")
			kr := f.upload(t, f.alphaProd, revoked.line, nil)
			soon := f.clock.Now().Add(time.Hour)
			f.upload(t, f.alphaProd, expiring.line, &soon)
			f.upload(t, f.alphaProd, kept.line, nil)

			sessRevoked := openSession(t, addr, "alpha-prod", revoked)
			sessExpiring := openSession(t, addr, "alpha-prod", expiring)
			sessKept := openSession(t, addr, "alpha-prod", kept)
			for name, c := range map[string]*sftp.Client{"revoked": sessRevoked, "expiring": sessExpiring, "kept": sessKept} {
				if err := put(c, name+"-before.txt"); err != nil {
					t.Fatalf("upload with the %s key before any change: %v", name, err)
				}
			}

			otherSvc := NewService(other.db, other.store, audit.NewRecorder(other.db, models.NewAuditStore(other.db), f.clock.Now), nil, f.clock.Now, nil)
			if err := otherSvc.Revoke(ctx, f.admin, audit.Origin{}, f.alpha.ID, kr.ID, ""); err != nil {
				t.Fatal(err)
			}
			waitEnded(t, sessRevoked, "session of the key revoked on another replica")
			if err := put(sessKept, "kept-after-revoke.txt"); err != nil {
				t.Fatalf("the session of a valid key ended with the revocation of another key: %v", err)
			}
			if err := put(sessExpiring, "expiring-before-expiry.txt"); err != nil {
				t.Fatalf("the session of a key before its expiry ended: %v", err)
			}

			f.clock.Advance(time.Hour)
			waitEnded(t, sessExpiring, "session of the expired key")
			if err := put(sessKept, "kept-after-expiry.txt"); err != nil {
				t.Fatalf("the session of a valid key ended with the expiry of another key: %v", err)
			}
		})
	}
}
