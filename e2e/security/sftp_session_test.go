package security

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"keyconsole/e2e/harness"
)

// openSFTPSession logs in to addr (127.0.0.1 only) as user with signer and
// keeps the SFTP session open until the test ends.
func openSFTPSession(t *testing.T, addr, user string, signer ssh.Signer) *sftp.Client {
	t.Helper()
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Fatal(errors.New("tests only dial 127.0.0.1"))
	}
	conn, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		Config: ssh.Config{
			KeyExchanges: []string{"ecdh-sha2-nistp256", "ecdh-sha2-nistp384"},
			Ciphers:      []string{"aes128-ctr", "aes256-ctr"},
			MACs:         []string{ssh.HMACSHA256ETM, ssh.HMACSHA256},
		},
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("SFTP login of %s: %v", user, err)
	}
	c, err := sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		t.Fatalf("SFTP session of %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// sftpPut uploads a small file through an open session.
func sftpPut(c *sftp.Client, name string) error {
	f, err := c.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte("case file\n")); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// TestFinding08_RevocationOnOneReplicaEndsSFTPSessionOnAnother opens an SFTP
// session on replica B of two real consoles sharing one PostgreSQL
// database, then revokes its key through replica A's page: the next uploads
// on B fail within the deadline, while a session of another key stays
// usable.
func TestFinding08_RevocationOnOneReplicaEndsSFTPSessionOnAnother(t *testing.T) {
	t.Parallel()
	a, b := startReplicas(t)
	admin := signedIn(t, a, harness.AdminUser())
	account, user := createSFTPAccount(t, admin, a, harness.DemoSlug, "stg")
	revoked, kept := newSSHSigner(t), newSSHSigner(t)
	keyID := uploadSSHKey(t, admin, a, harness.DemoSlug, account, revoked.PublicKey(), "revoked-on-a")
	uploadSSHKey(t, admin, a, harness.DemoSlug, account, kept.PublicKey(), "kept")

	onB, keptOnB := openSFTPSession(t, b.SFTPAddr, user, revoked), openSFTPSession(t, b.SFTPAddr, user, kept)
	if err := sftpPut(onB, "before.txt"); err != nil {
		t.Fatalf("upload before the revocation: %v", err)
	}

	path := "/a/" + harness.DemoSlug + "/ssh-keys/keys/" + strconv.FormatInt(keyID, 10) + "/revoke"
	page := admin.Get(path)
	if page.Status != http.StatusOK {
		t.Fatalf("GET %s: %d", path, page.Status)
	}
	if r := admin.PostForm(path, form("_csrf", csrfOf(page.Body))); r.Status != http.StatusSeeOther {
		t.Fatalf("revoke on replica A: %d\n%s", r.Status, mainOf(r))
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; sftpPut(onB, fmt.Sprintf("after-%d.txt", i)) == nil; i++ {
		if time.Now().After(deadline) {
			t.Fatal("uploads on replica B still succeed 60 s after the key was revoked on replica A")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := sftpPut(keptOnB, "kept.txt"); err != nil {
		t.Fatalf("the session of a key still active ended: %v", err)
	}
}
