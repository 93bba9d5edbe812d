package security

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"keyconsole/e2e/harness"
)

// newSSHSigner returns a fresh Ed25519 key pair as an SSH signer.
func newSSHSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// createSFTPAccount creates the agency's SFTP account for an environment
// ("stg" or "prod") through the console and returns its id and login name.
func createSFTPAccount(t *testing.T, cl *harness.Client, c *harness.Console, slug, env string) (int64, string) {
	t.Helper()
	tok := csrfOf(cl.Get("/a/" + slug + "/ssh-keys").Body)
	r := cl.PostForm("/a/"+slug+"/ssh-keys/accounts", form("_csrf", tok, "environment", env))
	if r.Status != http.StatusSeeOther {
		t.Fatalf("create SFTP account in %s: %d\n%s", slug, r.Status, mainOf(r))
	}
	var acc struct {
		ID   int64
		Name string
	}
	err := c.DB().Gorm.Raw("SELECT id, name FROM sftp_accounts WHERE agency_id = ? AND environment = ?", agencyIDOf(t, c, slug), env).Scan(&acc).Error
	if err != nil || acc.ID == 0 {
		t.Fatalf("SFTP account of %s: %v", slug, err)
	}
	return acc.ID, acc.Name
}

// uploadSSHKey uploads a public key to an SFTP account through the console
// and returns the key's id.
func uploadSSHKey(t *testing.T, cl *harness.Client, c *harness.Console, slug string, account int64, pub ssh.PublicKey, comment string) int64 {
	t.Helper()
	path := "/a/" + slug + "/ssh-keys/accounts/" + strconv.FormatInt(account, 10) + "/upload"
	page := cl.Get(path)
	if page.Status != http.StatusOK {
		t.Fatalf("GET %s: %d", path, page.Status)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + comment
	r := cl.PostForm(path, form("_csrf", csrfOf(page.Body), "public_key", line))
	if r.Status != http.StatusSeeOther {
		t.Fatalf("upload key in %s: %d\n%s", slug, r.Status, mainOf(r))
	}
	var id int64
	if err := c.DB().Gorm.Raw("SELECT id FROM ssh_keys WHERE comment = ?", comment).Scan(&id).Error; err != nil || id == 0 {
		t.Fatalf("uploaded key %s: %v", comment, err)
	}
	return id
}

// sftpResult is the outcome of one SFTP login.
type sftpResult struct {
	HostKey ssh.PublicKey
	// Listed is true when the login succeeded and the account's directory
	// could be listed over SFTP.
	Listed bool
	Err    error
}

// sftpLogin connects to addr (from the loopback source address local, or
// any when empty) as user, offers the signers' keys, and lists the home
// directory over SFTP. Only FIPS 140-3 approved algorithms are offered, so
// it works whatever GODEBUG=fips140 says.
func sftpLogin(addr, local, user string, signers ...ssh.Signer) sftpResult {
	var res sftpResult
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	host, _, _ := net.SplitHostPort(addr)
	if host != "127.0.0.1" {
		return sftpResult{Err: errors.New("tests only dial 127.0.0.1")}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return sftpResult{Err: err}
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	cfg := &ssh.ClientConfig{
		Config: ssh.Config{
			KeyExchanges: []string{"ecdh-sha2-nistp256", "ecdh-sha2-nistp384"},
			Ciphers:      []string{"aes128-ctr", "aes256-ctr"},
			MACs:         []string{ssh.HMACSHA256ETM, ssh.HMACSHA256},
		},
		User: user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			res.HostKey = key
			return nil
		},
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512},
		Timeout:           10 * time.Second,
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		res.Err = err
		return res
	}
	client := ssh.NewClient(conn, chans, reqs)
	defer client.Close()
	sc, err := sftp.NewClient(client)
	if err != nil {
		res.Err = err
		return res
	}
	defer sc.Close()
	if _, err := sc.ReadDir("."); err != nil {
		res.Err = err
		return res
	}
	res.Listed = true
	return res
}
