package sshkeys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// keygen runs ssh-keygen with args and returns its standard output.
func keygen(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("ssh-keygen", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh-keygen %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// newKey generates a key pair with ssh-keygen and returns the private key path.
func newKey(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	keygen(t, append([]string{"-q", "-N", "", "-C", name + "@keyconsole.test", "-f", path}, args...)...)
	return path
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// opensshFingerprint asks ssh-keygen for the SHA256 fingerprint of a public key file.
func opensshFingerprint(t *testing.T, pubPath string) string {
	t.Helper()
	fields := strings.Fields(string(keygen(t, "-l", "-E", "sha256", "-f", pubPath)))
	if len(fields) < 2 {
		t.Fatalf("unexpected ssh-keygen -l output %q", fields)
	}
	return fields[1]
}

// pkixFromPub builds a PEM "PUBLIC KEY" block from a one-line public key,
// for key types that ssh-keygen cannot export to PKCS#8.
func pkixFromPub(t *testing.T, line []byte) []byte {
	t.Helper()
	key, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.(ssh.CryptoPublicKey).CryptoPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func asRefusal(t *testing.T, err error) *RefusalError {
	t.Helper()
	var re *RefusalError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *RefusalError", err, err)
	}
	return re
}

func TestMinimumRSABits(t *testing.T) {
	tests := []struct {
		policy int
		want   int
	}{
		{0, 3072},
		{2048, 2048},
		{1024, 2048},
		{-1, 2048},
		{3072, 3072},
		{4096, 4096},
	}
	for _, tt := range tests {
		if got := (ParsePolicy{MinRSABits: tt.policy}).MinimumRSABits(); got != tt.want {
			t.Errorf("ParsePolicy{%d}.MinimumRSABits() = %d, want %d", tt.policy, got, tt.want)
		}
	}
}

func TestParseAccepted(t *testing.T) {
	dir := t.TempDir()
	type keySpec struct {
		name   string
		args   []string
		typ    string
		bits   int
		policy ParsePolicy
	}
	specs := []keySpec{
		{"ed25519", []string{"-t", "ed25519"}, "ssh-ed25519", 256, ParsePolicy{}},
		{"ecdsa256", []string{"-t", "ecdsa", "-b", "256"}, "ecdsa-sha2-nistp256", 256, ParsePolicy{}},
		{"ecdsa384", []string{"-t", "ecdsa", "-b", "384"}, "ecdsa-sha2-nistp384", 384, ParsePolicy{}},
		{"ecdsa521", []string{"-t", "ecdsa", "-b", "521"}, "ecdsa-sha2-nistp521", 521, ParsePolicy{}},
		{"rsa2048", []string{"-t", "rsa", "-b", "2048"}, "ssh-rsa", 2048, ParsePolicy{MinRSABits: 2048}},
		{"rsa3072", []string{"-t", "rsa", "-b", "3072"}, "ssh-rsa", 3072, ParsePolicy{}},
		{"rsa4096", []string{"-t", "rsa", "-b", "4096"}, "ssh-rsa", 4096, ParsePolicy{}},
	}

	type tc struct {
		name        string
		input       []byte
		policy      ParsePolicy
		typ         string
		bits        int
		fingerprint string
		comment     string
		// keyPart is "type base64" of the key, the start of AuthorizedKey.
		keyPart string
	}
	var cases []tc
	for _, s := range specs {
		priv := newKey(t, dir, s.name, s.args...)
		pubPath := priv + ".pub"
		pub := readFile(t, pubPath)
		fields := strings.Fields(string(pub))
		keyPart := fields[0] + " " + fields[1]
		comment := s.name + "@keyconsole.test"
		fp := opensshFingerprint(t, pubPath)
		add := func(format string, input []byte, comment string) {
			cases = append(cases, tc{s.name + "/" + format, input, s.policy, s.typ, s.bits, fp, comment, keyPart})
		}

		add("openssh", pub, comment)
		add("openssh-crlf-and-space", []byte("\r\n  "+strings.TrimSpace(string(pub))+" \r\n\r\n"), comment)
		add("openssh-bom", append([]byte("\ufeff"), pub...), comment)
		add("openssh-with-comment-lines", []byte("# my laptop\n\n"+string(pub)+"# end\n"), comment)
		add("openssh-no-comment", []byte(keyPart), "")

		rfc := keygen(t, "-e", "-m", "RFC4716", "-f", pubPath)
		rfcComment := strings.Trim(strings.TrimSpace(strings.TrimPrefix(strings.Split(string(rfc), "\n")[1], "Comment:")), `"`)
		add("rfc4716", rfc, rfcComment)
		add("rfc4716-crlf", bytes.ReplaceAll(rfc, []byte("\n"), []byte("\r\n")), rfcComment)

		if s.typ == "ssh-ed25519" {
			add("pkix", pkixFromPub(t, pub), "")
		} else {
			add("pkix", keygen(t, "-e", "-m", "PKCS8", "-f", pubPath), "")
			pemOut := keygen(t, "-e", "-m", "PEM", "-f", pubPath)
			if s.typ == "ssh-rsa" && !bytes.Contains(pemOut, []byte("BEGIN RSA PUBLIC KEY")) {
				t.Fatalf("ssh-keygen -e -m PEM did not produce PKCS#1: %s", pemOut)
			}
			add("pem", pemOut, "")
		}
	}
	for _, name := range []string{"sk-ed25519.pub", "sk-ecdsa.pub"} {
		path := filepath.Join("testdata", name)
		pub := readFile(t, path)
		fields := strings.Fields(string(pub))
		typ := fields[0]
		cases = append(cases, tc{"testdata/" + name, pub, ParsePolicy{}, typ, 256, opensshFingerprint(t, path), "sk-sample@example.test", fields[0] + " " + fields[1]})
	}
	{
		path := filepath.Join("testdata", "rfc4716-headers.pub")
		in := readFile(t, path)
		line := keygen(t, "-i", "-m", "RFC4716", "-f", path)
		fields := strings.Fields(string(line))
		converted := filepath.Join(dir, "rfc4716-headers-converted.pub")
		if err := os.WriteFile(converted, line, 0o600); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, tc{"testdata/rfc4716-headers.pub", in, ParsePolicy{}, "ssh-ed25519", 256,
			opensshFingerprint(t, converted), "alice laptop key, made for the parser tests", fields[0] + " " + fields[1]})
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse(c.input, c.policy)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Type != c.typ || got.Key.Type() != c.typ {
				t.Errorf("Type = %q (key %q), want %q", got.Type, got.Key.Type(), c.typ)
			}
			if got.Bits != c.bits {
				t.Errorf("Bits = %d, want %d", got.Bits, c.bits)
			}
			if got.FingerprintSHA256 != c.fingerprint {
				t.Errorf("FingerprintSHA256 = %q, want %q (from ssh-keygen)", got.FingerprintSHA256, c.fingerprint)
			}
			if got.Comment != c.comment {
				t.Errorf("Comment = %q, want %q", got.Comment, c.comment)
			}
			wantLine := c.keyPart
			if c.comment != "" {
				wantLine += " " + c.comment
			}
			if got.AuthorizedKey != wantLine {
				t.Errorf("AuthorizedKey = %q, want %q", got.AuthorizedKey, wantLine)
			}
			again, err := Parse([]byte(got.AuthorizedKey), c.policy)
			if err != nil {
				t.Fatalf("re-parse of AuthorizedKey: %v", err)
			}
			if again.FingerprintSHA256 != got.FingerprintSHA256 || again.AuthorizedKey != got.AuthorizedKey {
				t.Errorf("re-parse gave %q %q, want %q %q", again.FingerprintSHA256, again.AuthorizedKey, got.FingerprintSHA256, got.AuthorizedKey)
			}
			if IsPrivateKey(c.input) {
				t.Errorf("IsPrivateKey(public key) = true")
			}
		})
	}
}

func TestParseCommentCleaned(t *testing.T) {
	dir := t.TempDir()
	pub := readFile(t, newKey(t, dir, "k", "-t", "ed25519")+".pub")
	fields := strings.Fields(string(pub))
	tests := []struct {
		name    string
		comment string
		want    string
	}{
		{"tabs", "alice\tat\twork", "alice at work"},
		{"control", "alice\x00\x07laptop", "alice  laptop"},
		{"unicode", "José's private key of the team", "José's private key of the team"},
		{"invalid-utf8-free", "nbsp\u00a0here", "nbsp here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(fields[0]+" "+fields[1]+" "+tt.comment), ParsePolicy{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Comment != tt.want {
				t.Errorf("Comment = %q, want %q", got.Comment, tt.want)
			}
			if got.AuthorizedKey != fields[0]+" "+fields[1]+" "+tt.want {
				t.Errorf("AuthorizedKey = %q", got.AuthorizedKey)
			}
		})
	}
}

// canGenerateDSA reports whether this ssh-keygen still makes DSA keys.
func canGenerateDSA(dir string) (string, bool) {
	path := filepath.Join(dir, "dsa")
	if err := exec.Command("ssh-keygen", "-q", "-t", "dsa", "-N", "", "-f", path).Run(); err != nil {
		return "", false
	}
	return path, true
}

func TestParseRefused(t *testing.T) {
	dir := t.TempDir()
	ed := newKey(t, dir, "ed", "-t", "ed25519")
	edPub := readFile(t, ed+".pub")
	edFields := strings.Fields(string(edPub))
	ed2Pub := readFile(t, newKey(t, dir, "ed2", "-t", "ed25519")+".pub")
	ecPub := readFile(t, newKey(t, dir, "ec", "-t", "ecdsa", "-b", "384")+".pub")
	rsa2048 := newKey(t, dir, "rsa2048", "-t", "rsa", "-b", "2048")
	rsa1024 := newKey(t, dir, "rsa1024", "-t", "rsa", "-b", "1024")

	ca := newKey(t, dir, "ca", "-t", "ed25519")
	keygen(t, "-q", "-s", ca, "-I", "alice", "-n", "alice", ed+".pub")
	cert := readFile(t, ed+"-cert.pub")

	xmss := ssh.Marshal(struct{ Name, Key string }{"ssh-xmss@openssh.com", "0123456789abcdef"})
	xmssLine := "ssh-xmss@openssh.com " + base64.StdEncoding.EncodeToString(xmss) + " pq"

	// A type that names ed25519 but carries a short key.
	shortEd := ssh.Marshal(struct{ Name, Key string }{"ssh-ed25519", "short"})
	shortEdLine := "ssh-ed25519 " + base64.StdEncoding.EncodeToString(shortEd)

	x509Cert := func() []byte {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}()

	type tc struct {
		name     string
		input    []byte
		policy   ParsePolicy
		code     string
		contains []string
	}
	cases := []tc{
		{"empty", nil, ParsePolicy{}, CodeEmpty, []string{"empty"}},
		{"whitespace", []byte(" \r\n\t\n "), ParsePolicy{}, CodeEmpty, []string{"empty"}},
		{"only-comments", []byte("# nothing here\n#\n"), ParsePolicy{}, CodeEmpty, []string{"only comments"}},
		{"too-large", bytes.Repeat([]byte("A"), MaxInputSize+1), ParsePolicy{}, CodeTooLarge, []string{"16 KiB"}},
		{"too-large-valid-key", append(append([]byte{}, edPub...), bytes.Repeat([]byte(" "), MaxInputSize)...), ParsePolicy{}, CodeTooLarge, []string{"16 KiB"}},
		{"binary", []byte{0xff, 0xfe, 0x00, 0x01}, ParsePolicy{}, CodeMalformed, []string{"not text"}},
		{"garbage", []byte("hello world"), ParsePolicy{}, CodeMalformed, []string{"not a recognised"}},
		{"type-only", []byte("ssh-ed25519"), ParsePolicy{}, CodeMalformed, nil},
		{"truncated-base64", []byte(edFields[0] + " " + edFields[1][:40]), ParsePolicy{}, CodeMalformed, nil},
		{"damaged-blob", []byte(shortEdLine), ParsePolicy{}, CodeMalformed, []string{"ssh-ed25519", "damaged"}},
		{"type-mismatch", []byte("ssh-rsa " + edFields[1]), ParsePolicy{}, CodeMalformed, nil},
		{"rfc4716-no-end", []byte(rfcBegin + "\n" + edFields[1] + "\n"), ParsePolicy{}, CodeMalformed, []string{"END SSH2 PUBLIC KEY"}},
		{"rfc4716-empty", []byte(rfcBegin + "\nComment: x\n" + rfcEnd + "\n"), ParsePolicy{}, CodeMalformed, []string{"no key data"}},
		{"rfc4716-bad-base64", []byte(rfcBegin + "\n!!!!\n" + rfcEnd + "\n"), ParsePolicy{}, CodeMalformed, []string{"base64"}},
		{"rfc4716-open-continuation", []byte(rfcBegin + "\nComment: x\\\n" + rfcEnd + "\n"), ParsePolicy{}, CodeMalformed, []string{"continued"}},
		{"pem-no-end", []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n"), ParsePolicy{}, CodeMalformed, []string{"END"}},
		{"pem-bad-der", []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"), ParsePolicy{}, CodeMalformed, nil},
		{"pem-other-label", []byte("-----BEGIN FOO-----\nMCowBQYDK2VwAyEA\n-----END FOO-----\n"), ParsePolicy{}, CodeUnsupportedType, []string{"not a public key"}},
		{"x509-certificate", x509Cert, ParsePolicy{}, CodeUnsupportedType, []string{"X.509 certificate"}},
		{"text-around-key", []byte("my key:\n" + string(edPub)), ParsePolicy{}, CodeMalformed, []string{"not part of a public key"}},
		{"options-command", []byte(`command="ls -la",no-pty ` + string(edPub)), ParsePolicy{}, CodeOptions, []string{"options"}},
		{"options-restrict", []byte("restrict " + string(edPub)), ParsePolicy{}, CodeOptions, []string{"options"}},
		{"options-from", []byte(`from="192.0.2.0/24" ` + string(ecPub)), ParsePolicy{}, CodeOptions, []string{"options"}},
		{"options-with-damaged-key", []byte("restrict " + shortEdLine), ParsePolicy{}, CodeOptions, nil},
		{"two-keys", []byte(string(edPub) + string(ed2Pub)), ParsePolicy{}, CodeMultipleKeys, []string{"2 public keys", "one key at a time"}},
		{"three-keys", []byte(string(edPub) + "\n# second\n" + string(ed2Pub) + string(ecPub)), ParsePolicy{}, CodeMultipleKeys, []string{"3 public keys"}},
		{"two-keys-one-line", []byte(strings.TrimSpace(string(edPub)) + " " + strings.TrimSpace(string(ed2Pub))), ParsePolicy{}, CodeMultipleKeys, []string{"2 public keys"}},
		{"two-formats", append(append([]byte{}, edPub...), keygen(t, "-e", "-m", "RFC4716", "-f", ed+".pub")...), ParsePolicy{}, CodeMultipleKeys, []string{"2 public keys"}},
		{"two-pem", append(keygen(t, "-e", "-m", "PKCS8", "-f", rsa2048+".pub"), pkixFromPub(t, ecPub)...), ParsePolicy{}, CodeMultipleKeys, []string{"2 public keys"}},
		{"dsa-testdata", readFile(t, "testdata/dsa.pub"), ParsePolicy{}, CodeDSA, []string{"DSA"}},
		{"dsa-testdata-pkix", readFile(t, "testdata/dsa-pkix.pem"), ParsePolicy{}, CodeDSA, []string{"DSA"}},
		{"dsa-testdata-rfc4716", keygen(t, "-e", "-m", "RFC4716", "-f", "testdata/dsa.pub"), ParsePolicy{}, CodeDSA, []string{"DSA"}},
		{"dsa-with-options", []byte("restrict " + string(readFile(t, "testdata/dsa.pub"))), ParsePolicy{}, CodeDSA, nil},
		{"rsa2048-default", readFile(t, rsa2048+".pub"), ParsePolicy{}, CodeRSATooShort, []string{"2048 bits", "minimum is 3072 bits"}},
		{"rsa2048-policy-3072", readFile(t, rsa2048+".pub"), ParsePolicy{MinRSABits: 3072}, CodeRSATooShort, []string{"2048 bits", "3072"}},
		{"rsa2048-policy-4096", readFile(t, rsa2048+".pub"), ParsePolicy{MinRSABits: 4096}, CodeRSATooShort, []string{"2048 bits", "minimum is 4096 bits"}},
		{"rsa2048-pkcs8", keygen(t, "-e", "-m", "PKCS8", "-f", rsa2048+".pub"), ParsePolicy{}, CodeRSATooShort, []string{"2048 bits"}},
		{"rsa2048-pkcs1", keygen(t, "-e", "-m", "PEM", "-f", rsa2048+".pub"), ParsePolicy{}, CodeRSATooShort, []string{"2048 bits"}},
		{"rsa2048-rfc4716", keygen(t, "-e", "-m", "RFC4716", "-f", rsa2048+".pub"), ParsePolicy{}, CodeRSATooShort, []string{"2048 bits"}},
		{"rsa1024-policy-2048", readFile(t, rsa1024+".pub"), ParsePolicy{MinRSABits: 2048}, CodeRSATooShort, []string{"1024 bits", "minimum is 2048 bits"}},
		{"rsa1024-policy-1024-floored", readFile(t, rsa1024+".pub"), ParsePolicy{MinRSABits: 1024}, CodeRSATooShort, []string{"1024 bits", "minimum is 2048 bits"}},
		{"certificate", cert, ParsePolicy{}, CodeCertificate, []string{"certificate"}},
		{"certificate-rfc4716", []byte(rfcBegin + "\n" + strings.Fields(string(cert))[1] + "\n" + rfcEnd + "\n"), ParsePolicy{}, CodeCertificate, []string{"certificate"}},
		{"unsupported-xmss", []byte(xmssLine), ParsePolicy{}, CodeUnsupportedType, []string{`"ssh-xmss@openssh.com"`}},
		{"unsupported-x25519-pkix", readFile(t, "testdata/x25519-pkix.pem"), ParsePolicy{}, CodeUnsupportedType, []string{"cannot be used for SSH"}},
		{"unsupported-p224-pkix", readFile(t, "testdata/ecdsa-p224-pkix.pem"), ParsePolicy{}, CodeUnsupportedType, []string{"curve"}},
	}
	if dsa, ok := canGenerateDSA(dir); ok {
		dsaPub := readFile(t, dsa+".pub")
		cases = append(cases,
			tc{"dsa-generated", dsaPub, ParsePolicy{}, CodeDSA, []string{"DSA"}},
			tc{"dsa-generated-rfc4716", keygen(t, "-e", "-m", "RFC4716", "-f", dsa+".pub"), ParsePolicy{}, CodeDSA, []string{"DSA"}},
			tc{"dsa-generated-pkix", keygen(t, "-e", "-m", "PKCS8", "-f", dsa+".pub"), ParsePolicy{}, CodeDSA, []string{"DSA"}},
		)
	} else {
		t.Log("this ssh-keygen no longer makes DSA keys; testing the checked-in DSA samples only")
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse(c.input, c.policy)
			if err == nil {
				t.Fatalf("Parse accepted %s key %s", got.Type, got.FingerprintSHA256)
			}
			re := asRefusal(t, err)
			if re.Code != c.code {
				t.Errorf("Code = %q, want %q (message %q)", re.Code, c.code, re.Message)
			}
			if re.PrivateKey {
				t.Errorf("PrivateKey = true for a public key refusal")
			}
			if re.Error() != re.Message || re.Message == "" {
				t.Errorf("Error() = %q, Message = %q", re.Error(), re.Message)
			}
			for _, want := range c.contains {
				if !strings.Contains(re.Message, want) {
					t.Errorf("message %q does not contain %q", re.Message, want)
				}
			}
		})
	}
}

// material returns the lines of a key file that hold key data or a comment:
// everything except armour lines.
func material(input []byte) []string {
	var out []string
	for _, line := range strings.Split(string(input), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "-----") || strings.HasPrefix(line, "----") {
			continue
		}
		if tag, value, ok := strings.Cut(line, ": "); ok && !strings.ContainsAny(tag, " /+=") {
			out = append(out, value)
			continue
		}
		out = append(out, line)
	}
	return out
}

// assertNoEcho fails if any 8-byte run of the key material appears in msg.
func assertNoEcho(t *testing.T, input []byte, msg string) {
	t.Helper()
	const window = 8
	for _, line := range material(input) {
		for i := 0; i+window <= len(line); i++ {
			if sub := line[i : i+window]; strings.Contains(msg, sub) {
				t.Fatalf("refusal message %q contains %q from the private key", msg, sub)
			}
		}
	}
}

func TestParsePrivateKeys(t *testing.T) {
	dir := t.TempDir()
	type tc struct {
		name  string
		input []byte
	}
	var cases []tc
	gen := func(name string, args ...string) []byte {
		path := filepath.Join(dir, name)
		keygen(t, append([]string{"-q", "-C", "secret-comment-" + name, "-f", path}, args...)...)
		return readFile(t, path)
	}
	specs := []struct {
		name string
		args []string
		want string
	}{
		{"ed25519-openssh", []string{"-t", "ed25519", "-N", ""}, "BEGIN OPENSSH PRIVATE KEY"},
		{"ecdsa-openssh", []string{"-t", "ecdsa", "-N", ""}, "BEGIN OPENSSH PRIVATE KEY"},
		{"rsa-openssh", []string{"-t", "rsa", "-b", "3072", "-N", ""}, "BEGIN OPENSSH PRIVATE KEY"},
		{"ed25519-openssh-encrypted", []string{"-t", "ed25519", "-N", "correct horse"}, "BEGIN OPENSSH PRIVATE KEY"},
		{"rsa-pem", []string{"-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""}, "BEGIN RSA PRIVATE KEY"},
		{"rsa-pem-encrypted", []string{"-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "correct horse"}, "Proc-Type: 4,ENCRYPTED"},
		{"ecdsa-pem", []string{"-t", "ecdsa", "-m", "PEM", "-N", ""}, "BEGIN EC PRIVATE KEY"},
		{"rsa-pkcs8", []string{"-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", ""}, "BEGIN PRIVATE KEY"},
		{"ecdsa-pkcs8-encrypted", []string{"-t", "ecdsa", "-m", "PKCS8", "-N", "correct horse"}, "BEGIN ENCRYPTED PRIVATE KEY"},
	}
	for _, s := range specs {
		priv := gen(s.name, s.args...)
		if !bytes.Contains(priv, []byte(s.want)) {
			t.Fatalf("%s: ssh-keygen output lacks %q", s.name, s.want)
		}
		cases = append(cases, tc{s.name, priv})
	}
	if _, ok := canGenerateDSA(dir); ok {
		cases = append(cases, tc{"dsa-pem", gen("dsa-pem", "-t", "dsa", "-m", "PEM", "-N", "")})
	}
	for _, name := range []string{"putty-v2-rsa.ppk", "putty-v3-ed25519.ppk", "putty-v3-encrypted.ppk"} {
		cases = append(cases, tc{"testdata/" + name, readFile(t, filepath.Join("testdata", name))})
	}

	openssh := cases[0].input
	var body []string
	for _, line := range strings.Split(string(openssh), "\n") {
		if !strings.HasPrefix(line, "-----") {
			body = append(body, line)
		}
	}
	pub := readFile(t, filepath.Join(dir, "ed25519-openssh.pub"))
	cases = append(cases,
		tc{"surrounded-by-text", []byte("Hi, here is my key as requested:\n\n" + string(openssh) + "\nThanks, Alice\n")},
		tc{"crlf", bytes.ReplaceAll(openssh, []byte("\n"), []byte("\r\n"))},
		tc{"body-without-armour", []byte(strings.Join(body, "\n"))},
		tc{"body-on-one-line", []byte(strings.Join(body, ""))},
		tc{"after-public-key", append(append([]byte{}, pub...), openssh...)},
		tc{"as-comment-of-public-key", []byte(strings.TrimSpace(string(pub)) + " " + strings.ReplaceAll(string(openssh), "\n", " "))},
		tc{"oversized", append(append([]byte{}, openssh...), bytes.Repeat([]byte("x"), MaxInputSize)...)},
		tc{"armour-lowercase", bytes.ToLower(openssh)},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !IsPrivateKey(c.input) {
				t.Errorf("IsPrivateKey = false")
			}
			got, err := Parse(c.input, ParsePolicy{})
			if err == nil {
				t.Fatalf("Parse accepted a private key as %s", got.Type)
			}
			re := asRefusal(t, err)
			if re.Code != CodePrivateKey || !re.PrivateKey {
				t.Errorf("Code = %q, PrivateKey = %v; want %q, true", re.Code, re.PrivateKey, CodePrivateKey)
			}
			if !strings.Contains(re.Message, "exposed") || !strings.Contains(re.Message, "not stored") {
				t.Errorf("message %q does not tell the user the key pair is exposed and was not stored", re.Message)
			}
			if strings.Contains(re.Message, "secret-comment") || strings.Contains(re.Message, "throwaway") {
				t.Errorf("message %q contains the key comment", re.Message)
			}
			assertNoEcho(t, c.input, re.Message)
			assertNoEcho(t, c.input, err.Error())
		})
	}
}

func TestIsPrivateKeyPublicInputs(t *testing.T) {
	dir := t.TempDir()
	priv := newKey(t, dir, "k", "-t", "ecdsa")
	pub := readFile(t, priv+".pub")
	fields := strings.Fields(string(pub))
	tests := []struct {
		name  string
		input []byte
	}{
		{"openssh", pub},
		{"comment-mentions-private-key", []byte(fields[0] + " " + fields[1] + " this is the private key of alice")},
		{"rfc4716", keygen(t, "-e", "-m", "RFC4716", "-f", priv+".pub")},
		{"pkix", keygen(t, "-e", "-m", "PKCS8", "-f", priv+".pub")},
		{"prose", []byte("Please keep your private key private.")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if IsPrivateKey(tt.input) {
				t.Errorf("IsPrivateKey = true for %q", tt.input)
			}
		})
	}
}
