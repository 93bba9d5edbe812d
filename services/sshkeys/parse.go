// Package sshkeys reads, checks and describes the SSH public keys that SFTP
// accounts authenticate with.
package sshkeys

import (
	"bytes"
	"crypto/dsa" //nolint:staticcheck // only recognised in order to refuse it
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"keyconsole/services/validation"
)

// DefaultMinRSABits is the smallest RSA modulus accepted when no agency policy says otherwise.
const DefaultMinRSABits = 3072

// FloorRSABits is the smallest RSA modulus any policy may accept.
const FloorRSABits = 2048

// MaxInputSize is the largest upload, in bytes, that Parse reads.
const MaxInputSize = 16 << 10

// Refusal codes carried by RefusalError.Code. They are stable and safe to
// show, store or map to translated messages.
const (
	CodeEmpty           = "empty"
	CodeTooLarge        = "too_large"
	CodePrivateKey      = "private_key"
	CodeMalformed       = "malformed"
	CodeOptions         = "options"
	CodeMultipleKeys    = "multiple_keys"
	CodeDSA             = "dsa"
	CodeRSATooShort     = "rsa_too_short"
	CodeCertificate     = "certificate"
	CodeUnsupportedType = "unsupported_type"
)

// privateKeyMessage is the one message given for any private key. It is a
// constant so that no part of the submitted material can ever reach it.
const privateKeyMessage = "This is a private key, not a public key. It was not stored. " +
	"Anyone who has seen it can sign in as you, so treat this key pair as exposed: " +
	"stop using it, generate a new key pair and upload only the new public key (the .pub file)."

// ParsePolicy holds the agency settings that decide which keys are acceptable.
type ParsePolicy struct {
	// MinRSABits is the smallest RSA modulus accepted. Zero means
	// DefaultMinRSABits; values below FloorRSABits are raised to FloorRSABits.
	MinRSABits int
}

// MinimumRSABits returns the RSA minimum this policy enforces, after
// applying the default and the floor.
func (p ParsePolicy) MinimumRSABits() int {
	switch {
	case p.MinRSABits == 0:
		return DefaultMinRSABits
	case p.MinRSABits < FloorRSABits:
		return FloorRSABits
	default:
		return p.MinRSABits
	}
}

// ParsedKey is an accepted public key with the facts shown to users.
type ParsedKey struct {
	// Key is the parsed public key.
	Key ssh.PublicKey
	// Type is the SSH key type, e.g. "ssh-ed25519".
	Type string
	// Bits is the RSA modulus size, the ECDSA curve size, or 256 for Ed25519.
	Bits int
	// FingerprintSHA256 is the OpenSSH SHA256 fingerprint, "SHA256:...".
	FingerprintSHA256 string
	// Comment is the key's comment, if the format carried one.
	Comment string
	// AuthorizedKey is the canonical one-line form "type base64 [comment]".
	AuthorizedKey string
}

// RefusalError explains why an upload was not accepted. Message is written
// for the person who uploaded the key and never contains private key material.
type RefusalError struct {
	// Code is a stable identifier of the reason, one of the Code constants.
	Code string
	// Message is the explanation shown to the user.
	Message string
	// PrivateKey is true when the upload contained a private key.
	PrivateKey bool
}

// Error returns the user-facing message.
func (e *RefusalError) Error() string { return e.Message }

// Unwrap makes a refused upload a refused form field (public_key) too, so
// errors.As finds it as a *validation.Error.
func (e *RefusalError) Unwrap() error { return validation.Field("public_key", e.Message) }

func refuse(code, format string, args ...any) *RefusalError {
	return &RefusalError{Code: code, Message: fmt.Sprintf(format, args...)}
}

var (
	// A PEM or RFC 4716 armour line naming a private key, e.g.
	// "-----BEGIN OPENSSH PRIVATE KEY-----" or
	// "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----", even without its dashes.
	privateArmour = regexp.MustCompile(`(?i)\b(BEGIN|END)\s+([A-Z0-9-]+\s+)*PRIVATE\s+KEY\b`)
	// Markers of PuTTY key files and of encrypted PEM headers.
	privateHeaders = regexp.MustCompile(`(?i)(PuTTY-User-Key-File-\d|Private-Lines\s*:|Private-MAC\s*:|Proc-Type\s*:\s*4\s*,\s*ENCRYPTED|DEK-Info\s*:)`)
)

// openSSHPrivateMagic is the base64 form of "openssh-key-v1\x00", the start of
// every OpenSSH private key body; it finds a body pasted without its armour.
const openSSHPrivateMagic = "b3BlbnNzaC1rZXktdjE"

// IsPrivateKey reports whether input contains a private key in any common
// format (PEM, OpenSSH, PuTTY, encrypted PEM), anywhere in the text.
func IsPrivateKey(input []byte) bool {
	if privateArmour.Match(input) || privateHeaders.Match(input) {
		return true
	}
	if bytes.Contains(input, []byte("openssh-key-v1\x00")) {
		return true
	}
	compact := bytes.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '\\' {
			return -1
		}
		return r
	}, input)
	return bytes.Contains(compact, []byte(openSSHPrivateMagic))
}

// Parse reads one public key from an upload and checks it against the policy.
// It accepts the OpenSSH one-line format, RFC 4716 and PEM (PKIX "PUBLIC KEY"
// and PKCS#1 "RSA PUBLIC KEY"). Every refusal is a *RefusalError.
func Parse(input []byte, p ParsePolicy) (ParsedKey, error) {
	// Private keys are recognised before anything else reads the input, so
	// that no later error can quote any of it.
	if IsPrivateKey(input) {
		return ParsedKey{}, &RefusalError{Code: CodePrivateKey, Message: privateKeyMessage, PrivateKey: true}
	}
	if len(input) > MaxInputSize {
		return ParsedKey{}, refuse(CodeTooLarge,
			"The upload is %d bytes; a public key is much smaller and the limit is %d KiB. Upload a single public key.",
			len(input), MaxInputSize>>10)
	}
	text := normalise(input)
	if text == "" {
		return ParsedKey{}, refuse(CodeEmpty, "The upload is empty. Paste or upload one SSH public key.")
	}
	if !utf8.ValidString(text) {
		return ParsedKey{}, refuse(CodeMalformed, "The upload is not text. Upload the public key file (for example id_ed25519.pub), not a binary file.")
	}

	segs, err := split(text)
	if err != nil {
		return ParsedKey{}, err
	}
	switch len(segs) {
	case 0:
		return ParsedKey{}, refuse(CodeEmpty, "The upload holds only comments or blank lines. Paste or upload one SSH public key.")
	case 1:
	default:
		n := 0
		for _, s := range segs {
			if s.looksLikeKey() {
				n++
			}
		}
		if n > 1 {
			return ParsedKey{}, multipleKeys(n)
		}
		return ParsedKey{}, refuse(CodeMalformed,
			"The upload contains text that is not part of a public key. Upload only the public key.")
	}

	key, comment, err := segs[0].parse()
	if err != nil {
		return ParsedKey{}, err
	}
	return describe(key, comment, p)
}

func multipleKeys(n int) *RefusalError {
	return refuse(CodeMultipleKeys, "The upload contains %d public keys. Upload one key at a time.", n)
}

// normalise turns any line ending into "\n" and removes a byte order mark
// and surrounding white space.
func normalise(input []byte) string {
	s := string(input)
	s = strings.TrimPrefix(s, "\ufeff")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.TrimSpace(s)
}

type segmentKind int

const (
	oneLine segmentKind = iota
	rfc4716
	pemBlock
)

// segment is one candidate key found in the upload: a line, an RFC 4716
// block or a PEM block.
type segment struct {
	kind  segmentKind
	lines []string
}

const (
	rfcBegin = "---- BEGIN SSH2 PUBLIC KEY ----"
	rfcEnd   = "---- END SSH2 PUBLIC KEY ----"
)

// split cuts the text into segments, skipping blank lines and "#" comments
// outside blocks.
func split(text string) ([]segment, error) {
	var segs []segment
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case line == rfcBegin:
			end := -1
			for j := i + 1; j < len(lines); j++ {
				if strings.TrimSpace(lines[j]) == rfcEnd {
					end = j
					break
				}
			}
			if end < 0 {
				return nil, refuse(CodeMalformed, "The RFC 4716 public key has no \"%s\" line; the upload may be cut short.", rfcEnd)
			}
			segs = append(segs, segment{kind: rfc4716, lines: trimAll(lines[i : end+1])})
			i = end
		case strings.HasPrefix(line, "-----BEGIN ") && strings.HasSuffix(line, "-----"):
			label := strings.TrimSuffix(strings.TrimPrefix(line, "-----BEGIN "), "-----")
			endLine := "-----END " + label + "-----"
			end := -1
			for j := i + 1; j < len(lines); j++ {
				if strings.TrimSpace(lines[j]) == endLine {
					end = j
					break
				}
			}
			if end < 0 {
				return nil, refuse(CodeMalformed, "The PEM block has no matching END line; the upload may be cut short.")
			}
			segs = append(segs, segment{kind: pemBlock, lines: trimAll(lines[i : end+1])})
			i = end
		default:
			segs = append(segs, segment{kind: oneLine, lines: []string{line}})
		}
	}
	return segs, nil
}

func trimAll(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimSpace(l)
	}
	return out
}

// looksLikeKey reports whether the segment holds a public key of any type,
// acceptable or not; it is used to count keys in a multi-key upload.
func (s segment) looksLikeKey() bool {
	switch s.kind {
	case oneLine:
		_, _, ok := findBlob(strings.Fields(s.lines[0]))
		return ok
	case rfc4716:
		blob, _, err := decodeRFC4716(s.lines)
		if err != nil {
			return false
		}
		_, ok := blobAlgorithm(blob)
		return ok
	default:
		block, _ := pem.Decode([]byte(strings.Join(s.lines, "\n")))
		return block != nil && (block.Type == "PUBLIC KEY" || block.Type == "RSA PUBLIC KEY")
	}
}

// parse reads the segment's key and comment.
func (s segment) parse() (ssh.PublicKey, string, error) {
	switch s.kind {
	case oneLine:
		return parseOneLine(s.lines[0])
	case rfc4716:
		blob, comment, err := decodeRFC4716(s.lines)
		if err != nil {
			return nil, "", err
		}
		key, err := ssh.ParsePublicKey(blob)
		if err != nil {
			return nil, "", diagnoseBlob(blob)
		}
		return key, comment, nil
	default:
		key, err := parsePEM(s.lines)
		return key, "", err
	}
}

func parseOneLine(line string) (ssh.PublicKey, string, error) {
	fields := strings.Fields(line)
	key, comment, options, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		idx, blob, ok := findBlob(fields)
		if !ok {
			return nil, "", refuse(CodeMalformed,
				"This is not a recognised SSH public key. Upload the contents of the .pub file, "+
					"which starts with the key type, e.g. \"ssh-ed25519 AAAA...\".")
		}
		rerr := diagnoseBlob(blob)
		if rerr.Code == CodeMalformed && idx >= 2 {
			return nil, "", refuseOptions()
		}
		return nil, "", rerr
	}
	if len(options) > 0 {
		return nil, "", refuseOptions()
	}
	if n := 1 + countKeys(strings.Fields(comment)); n > 1 {
		return nil, "", multipleKeys(n)
	}
	return key, comment, nil
}

func refuseOptions() *RefusalError {
	return refuse(CodeOptions,
		"The key line starts with authorized_keys options (such as from=, command= or restrict). "+
			"Options are not accepted here: upload the key alone, starting with its type, e.g. \"ssh-ed25519 AAAA...\".")
}

// findBlob finds the first field that is a type name followed by base64 data
// whose embedded algorithm matches it, and returns that data's index.
func findBlob(fields []string) (int, []byte, bool) {
	for i := 1; i < len(fields); i++ {
		blob, err := base64.StdEncoding.DecodeString(fields[i])
		if err != nil {
			continue
		}
		if algo, ok := blobAlgorithm(blob); ok && algo == fields[i-1] {
			return i, blob, true
		}
	}
	return 0, nil, false
}

// countKeys counts key-type-and-data pairs in a list of fields.
func countKeys(fields []string) int {
	n := 0
	for len(fields) > 1 {
		idx, _, ok := findBlob(fields)
		if !ok {
			break
		}
		n++
		fields = fields[idx+1:]
	}
	return n
}

// blobAlgorithm returns the algorithm name at the start of an SSH wire-format
// public key, if it is a plausible name.
func blobAlgorithm(blob []byte) (string, bool) {
	var w struct {
		Algo string
		Rest []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(blob, &w); err != nil {
		return "", false
	}
	if w.Algo == "" || len(w.Algo) > 64 {
		return "", false
	}
	for _, r := range w.Algo {
		if r <= ' ' || r > '~' {
			return "", false
		}
	}
	return w.Algo, true
}

// diagnoseBlob explains why a wire-format key could not be used.
func diagnoseBlob(blob []byte) *RefusalError {
	algo, ok := blobAlgorithm(blob)
	if !ok {
		return refuse(CodeMalformed, "The public key data is damaged and cannot be read. Copy the key again from the .pub file.")
	}
	switch {
	case algo == "ssh-dss":
		return refuseDSA()
	case strings.HasSuffix(algo, "-cert-v01@openssh.com"):
		return refuseCertificate()
	case supportedType(algo):
		return refuse(CodeMalformed, "The %s public key data is damaged and cannot be read. Copy the key again from the .pub file.", algo)
	default:
		return refuseType(algo)
	}
}

func refuseDSA() *RefusalError {
	return refuse(CodeDSA, "DSA (ssh-dss) keys are obsolete and not accepted. Generate a new key with \"ssh-keygen -t ed25519\" and upload its public key.")
}

func refuseCertificate() *RefusalError {
	return refuse(CodeCertificate, "This is an SSH certificate, not a plain public key. Upload the public key itself (the .pub file without -cert in its name).")
}

func refuseType(algo string) *RefusalError {
	return refuse(CodeUnsupportedType,
		"Keys of type %q are not accepted. Accepted types: Ed25519, ECDSA (P-256, P-384, P-521), RSA and FIDO security keys (sk-ssh-ed25519, sk-ecdsa-sha2-nistp256).",
		algo)
}

func supportedType(algo string) bool {
	switch algo {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384,
		ssh.KeyAlgoECDSA521, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoRSA:
		return true
	}
	return false
}

// decodeRFC4716 reads the headers and base64 body of an RFC 4716 block,
// returning the key blob and the Comment header.
func decodeRFC4716(lines []string) ([]byte, string, error) {
	body := lines[1 : len(lines)-1]
	var comment string
	i := 0
	for i < len(body) && strings.Contains(body[i], ":") {
		header := body[i]
		i++
		for strings.HasSuffix(header, "\\") {
			if i >= len(body) {
				return nil, "", refuse(CodeMalformed, "An RFC 4716 header line is continued past the end of the key.")
			}
			header = strings.TrimSuffix(header, "\\") + body[i]
			i++
		}
		tag, value, _ := strings.Cut(header, ":")
		if strings.EqualFold(strings.TrimSpace(tag), "Comment") {
			value = strings.TrimSpace(value)
			if len(value) >= 2 && strings.HasPrefix(value, `"`) && strings.HasSuffix(value, `"`) {
				value = value[1 : len(value)-1]
			}
			comment = value
		}
	}
	data := strings.Join(body[i:], "")
	if data == "" {
		return nil, "", refuse(CodeMalformed, "The RFC 4716 block contains no key data.")
	}
	blob, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, "", refuse(CodeMalformed, "The RFC 4716 key data is not valid base64. Copy the whole block again.")
	}
	return blob, comment, nil
}

// parsePEM reads a PKIX "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY" block.
func parsePEM(lines []string) (ssh.PublicKey, error) {
	block, rest := pem.Decode([]byte(strings.Join(lines, "\n")))
	if block == nil || len(bytes.TrimSpace(rest)) > 0 {
		return nil, refuse(CodeMalformed, "The PEM block cannot be read. Copy the whole block again, from its BEGIN line to its END line.")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		if rerr := checkPKIXAlgorithm(block.Bytes); rerr != nil {
			return nil, rerr
		}
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE":
		return nil, refuse(CodeUnsupportedType, "This is an X.509 certificate, not an SSH public key. Upload the SSH public key (the .pub file).")
	default:
		return nil, refuse(CodeUnsupportedType, "This PEM block is not a public key. Accepted PEM blocks are \"PUBLIC KEY\" and \"RSA PUBLIC KEY\".")
	}
	if err != nil {
		return nil, refuse(CodeMalformed,
			"The PEM public key cannot be read; it may be damaged or of an unsupported type. "+
				"Accepted types: Ed25519, ECDSA (P-256, P-384, P-521) and RSA.")
	}
	switch k := pub.(type) {
	case *dsa.PublicKey:
		return nil, refuseDSA()
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		key, err := ssh.NewPublicKey(k)
		if err != nil {
			return nil, refuse(CodeUnsupportedType,
				"This PEM public key uses a curve or size SSH does not support. Accepted types: Ed25519, ECDSA (P-256, P-384, P-521) and RSA.")
		}
		return key, nil
	default:
		return nil, refuse(CodeUnsupportedType,
			"This PEM public key is of a type that cannot be used for SSH. Accepted types: Ed25519, ECDSA (P-256, P-384, P-521) and RSA.")
	}
}

var (
	oidPublicKeyRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidPublicKeyECDSA   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidPublicKeyEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidPublicKeyDSA     = asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}
	oidCurveP256        = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidCurveP384        = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidCurveP521        = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
)

// checkPKIXAlgorithm reads the algorithm identifier of a SubjectPublicKeyInfo
// so that a DSA key or an unsupported type or curve gets its own refusal,
// whatever the crypto library of the build is able to decode.
func checkPKIXAlgorithm(der []byte) *RefusalError {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil || len(rest) > 0 {
		return nil // left to x509 to report as malformed
	}
	algo := spki.Algorithm.Algorithm
	switch {
	case algo.Equal(oidPublicKeyDSA):
		return refuseDSA()
	case algo.Equal(oidPublicKeyRSA), algo.Equal(oidPublicKeyEd25519):
		return nil
	case algo.Equal(oidPublicKeyECDSA):
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err != nil {
			return nil
		}
		if curve.Equal(oidCurveP256) || curve.Equal(oidCurveP384) || curve.Equal(oidCurveP521) {
			return nil
		}
		return refuse(CodeUnsupportedType,
			"This ECDSA public key uses a curve SSH does not support. Accepted types: Ed25519, ECDSA (P-256, P-384, P-521) and RSA.")
	default:
		return refuse(CodeUnsupportedType,
			"This PEM public key is of a type that cannot be used for SSH. Accepted types: Ed25519, ECDSA (P-256, P-384, P-521) and RSA.")
	}
}

// describe checks an accepted key against the policy and fills in ParsedKey.
func describe(key ssh.PublicKey, comment string, p ParsePolicy) (ParsedKey, error) {
	if _, ok := key.(*ssh.Certificate); ok {
		return ParsedKey{}, refuseCertificate()
	}
	var bits int
	switch key.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		bits = 256
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		ck, ok := key.(ssh.CryptoPublicKey)
		if !ok {
			return ParsedKey{}, refuseType(key.Type())
		}
		ec, ok := ck.CryptoPublicKey().(*ecdsa.PublicKey)
		if !ok {
			return ParsedKey{}, refuseType(key.Type())
		}
		bits = ec.Curve.Params().BitSize
	case ssh.KeyAlgoRSA:
		ck, ok := key.(ssh.CryptoPublicKey)
		if !ok {
			return ParsedKey{}, refuseType(key.Type())
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return ParsedKey{}, refuseType(key.Type())
		}
		bits = rk.N.BitLen()
		if minBits := p.MinimumRSABits(); bits < minBits {
			return ParsedKey{}, refuse(CodeRSATooShort,
				"This RSA key is %d bits; the minimum is %d bits. Generate a new key with \"ssh-keygen -t ed25519\" (or \"ssh-keygen -t rsa -b %d\") and upload its public key.",
				bits, minBits, max(minBits, DefaultMinRSABits))
		}
	case "ssh-dss":
		return ParsedKey{}, refuseDSA()
	default:
		return ParsedKey{}, refuseType(key.Type())
	}

	comment = cleanComment(comment)
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	if comment != "" {
		line += " " + comment
	}
	if IsPrivateKey([]byte(line)) {
		// Only a comment crafted to look like private key armour gets here.
		return ParsedKey{}, refuse(CodeMalformed, "The key comment looks like part of a private key. Remove the comment and upload the key again.")
	}
	return ParsedKey{
		Key:               key,
		Type:              key.Type(),
		Bits:              bits,
		FingerprintSHA256: ssh.FingerprintSHA256(key),
		Comment:           comment,
		AuthorizedKey:     line,
	}, nil
}

// cleanComment replaces control and invalid characters with spaces and trims
// the result, so that the comment fits on one authorized_keys line.
func cleanComment(s string) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
