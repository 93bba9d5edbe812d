package sftpd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// dialSFTP connects the Go SFTP client over a real SSH connection. Unlike
// the OpenSSH client it sends requests exactly as given (no stat before an
// open), which reaches every handler directly.
func dialSFTP(t *testing.T, env *testEnv, user, keyPath string) *sftp.Client {
	t.Helper()
	pem, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	kex, ciphers := algorithms()
	conn, err := ssh.Dial("tcp", "127.0.0.1:"+env.port, &ssh.ClientConfig{
		Config:          ssh.Config{KeyExchanges: kex, Ciphers: ciphers, MACs: macsAllowed},
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(mustHostKey(t, env.knownHosts)),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	client, err := sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		t.Fatalf("sftp client: %v", err)
	}
	t.Cleanup(func() {
		client.Close()
		conn.Close()
	})
	return client
}

func TestConfinementAtProtocolLevel(t *testing.T) {
	f := newFixture(t)
	accounts := filepath.Dir(f.aliceRoot)
	secret := []byte("TOP-SECRET outside the account\n")
	outside := filepath.Join(f.base, "outside")
	writeFile(t, filepath.Join(f.base, "secret.txt"), secret)
	writeFile(t, filepath.Join(accounts, "secret.txt"), secret)
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.aliceRoot, "inside.txt"), []byte("inside\n"))
	for link, target := range map[string]string{
		"etc":      "/etc",
		"up":       "..",
		"leak.txt": "../secret.txt",
		"abs.txt":  filepath.Join(f.base, "secret.txt"),
		"out":      outside,
		"dangling": filepath.Join(outside, "new.txt"),
	} {
		if err := os.Symlink(target, filepath.Join(f.aliceRoot, link)); err != nil {
			t.Fatal(err)
		}
	}
	c := dialSFTP(t, f.env, "alice", f.aliceKey)

	openErr := func(path string, flags int) func() error {
		return func() error {
			fh, err := c.OpenFile(path, flags)
			if err == nil {
				fh.Close()
			}
			return err
		}
	}
	tests := []struct {
		name string
		op   func() error
	}{
		{"open through link to /etc", openErr("etc/passwd", os.O_RDONLY)},
		{"open absolute", openErr("/etc/passwd", os.O_RDONLY)},
		{"open dot-dot", openErr("../../../../etc/passwd", os.O_RDONLY)},
		{"open parent file", openErr("../secret.txt", os.O_RDONLY)},
		{"open relative file link", openErr("leak.txt", os.O_RDONLY)},
		{"open absolute file link", openErr("abs.txt", os.O_RDONLY)},
		{"open through link to parent", openErr("up/secret.txt", os.O_RDONLY)},
		{"truncate through file link", openErr("leak.txt", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)},
		{"read-write through file link", openErr("leak.txt", os.O_RDWR)},
		{"create through directory link", openErr("out/evil.txt", os.O_WRONLY|os.O_CREATE)},
		{"create through dangling link", openErr("dangling", os.O_WRONLY|os.O_CREATE)},
		{"list link to /etc", func() error { _, err := c.ReadDir("etc"); return err }},
		{"list link to parent", func() error { _, err := c.ReadDir("up"); return err }},
		{"stat through link", func() error { _, err := c.Stat("etc/passwd"); return err }},
		{"stat link to parent", func() error { _, err := c.Stat("up"); return err }},
		{"lstat through link", func() error { _, err := c.Lstat("up/secret.txt"); return err }},
		{"mkdir through link", func() error { return c.Mkdir("out/newdir") }},
		{"remove through link", func() error { return c.Remove("up/secret.txt") }},
		{"rename into link", func() error { return c.Rename("inside.txt", "out/moved.txt") }},
		{"posix rename into link", func() error { return c.PosixRename("inside.txt", "out/moved.txt") }},
		{"rename out of link", func() error { return c.Rename("up/secret.txt", "stolen.txt") }},
		{"chmod through link", func() error { return c.Chmod("leak.txt", 0o777) }},
		{"truncate through link", func() error { return c.Truncate("leak.txt", 0) }},
		{"chtimes through link", func() error { return c.Chtimes("leak.txt", time.Unix(0, 0), time.Unix(0, 0)) }},
		{"chown", func() error { return c.Chown("inside.txt", 0, 0) }},
		{"symlink", func() error { return c.Symlink("/etc", "mylink") }},
		{"hard link", func() error { return c.Link("inside.txt", "hardlink") }},
		{"read link", func() error { _, err := c.ReadLink("etc"); return err }},
		{"remove the root", func() error { return c.RemoveDirectory("/") }},
		{"rename the root", func() error { return c.Rename("/", "elsewhere") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op()
			if err == nil {
				t.Fatal("operation succeeded")
			}
			if msg := err.Error(); strings.Contains(msg, f.base) || strings.Contains(msg, "accounts") {
				t.Errorf("error reveals a host path: %q", msg)
			}
		})
	}

	assertFile(t, filepath.Join(f.base, "secret.txt"), secret)
	assertFile(t, filepath.Join(accounts, "secret.txt"), secret)
	assertFile(t, filepath.Join(f.aliceRoot, "inside.txt"), []byte("inside\n"))
	for _, p := range []string{filepath.Join(accounts, "secret.txt"), filepath.Join(f.base, "secret.txt")} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 || fi.ModTime().Unix() == 0 {
			t.Errorf("%s attributes changed: %v %v", p, fi, err)
		}
	}
	if entries, err := os.ReadDir(outside); err != nil || len(entries) != 0 {
		t.Errorf("outside directory changed: %v %v", entries, err)
	}
	for _, p := range []string{"mylink", "hardlink", "stolen.txt"} {
		assertAbsent(t, filepath.Join(f.aliceRoot, p))
	}

	// The links themselves are visible without being followed.
	fi, err := c.Lstat("etc")
	if err != nil {
		t.Fatalf("lstat of a planted link: %v", err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("lstat mode %v, want a symlink", fi.Mode())
	}
	entries, err := c.ReadDir("/")
	if err != nil {
		t.Fatalf("list root: %v", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "abs.txt,dangling,etc,inside.txt,leak.txt,out,up" {
		t.Errorf("root listing = %s", got)
	}
	if wd, err := c.Getwd(); err != nil || wd != "/" {
		t.Errorf("Getwd = %q, %v; want /", wd, err)
	}
	if rp, err := c.RealPath("../../.."); err != nil || rp != "/" {
		t.Errorf("RealPath(../../..) = %q, %v; want /", rp, err)
	}
}

func TestReadWriteHandle(t *testing.T) {
	f := newFixture(t)
	c := dialSFTP(t, f.env, "alice", f.aliceKey)
	fh, err := c.OpenFile("rw.txt", os.O_RDWR|os.O_CREATE|os.O_EXCL)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := fh.Write([]byte("hello world")); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 5)
	if _, err := fh.ReadAt(buf, 6); err != nil || string(buf) != "world" {
		t.Fatalf("read back %q, %v", buf, err)
	}
	if err := fh.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := c.OpenFile("rw.txt", os.O_RDWR|os.O_CREATE|os.O_EXCL); err == nil {
		t.Fatal("exclusive create of an existing file succeeded")
	}
	if err := c.Rename("rw.txt", "rw.txt"); err == nil {
		t.Fatal("rename onto an existing name succeeded")
	}
	writeFile(t, filepath.Join(f.aliceRoot, "other.txt"), []byte("other"))
	if err := c.PosixRename("other.txt", "rw.txt"); err != nil {
		t.Fatalf("posix rename over an existing file: %v", err)
	}
	assertFile(t, filepath.Join(f.aliceRoot, "rw.txt"), []byte("other"))
	if err := c.Truncate("rw.txt", 2); err != nil {
		t.Fatalf("truncate: %v", err)
	}
	assertFile(t, filepath.Join(f.aliceRoot, "rw.txt"), []byte("ot"))
	if err := c.Remove("/"); err == nil {
		t.Fatal("removing the root succeeded")
	}
	if err := c.Mkdir("d"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveDirectory("d"); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	assertAbsent(t, filepath.Join(f.aliceRoot, "d"))
	if err := c.RemoveDirectory("rw.txt"); err == nil {
		t.Fatal("rmdir of a file succeeded")
	}
}
