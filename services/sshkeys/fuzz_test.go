package sshkeys

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// FuzzParse checks, for any input, that Parse never panics, that a private
// key is refused without echoing any of it, and that an accepted key
// re-parses from its AuthorizedKey to the same key. The seed corpus in
// testdata/fuzz/FuzzParse holds one sample of every supported and refused format.
func FuzzParse(f *testing.F) {
	knownCodes := map[string]bool{
		CodeEmpty: true, CodeTooLarge: true, CodePrivateKey: true, CodeMalformed: true,
		CodeOptions: true, CodeMultipleKeys: true, CodeDSA: true, CodeRSATooShort: true,
		CodeCertificate: true, CodeUnsupportedType: true,
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		policy := ParsePolicy{MinRSABits: FloorRSABits}
		private := IsPrivateKey(input)
		got, err := Parse(input, policy)
		if err != nil {
			var re *RefusalError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a *RefusalError", err, err)
			}
			if !knownCodes[re.Code] {
				t.Fatalf("unknown refusal code %q", re.Code)
			}
			if private {
				if re.Code != CodePrivateKey || !re.PrivateKey {
					t.Fatalf("private key refused with code %q, PrivateKey=%v", re.Code, re.PrivateKey)
				}
				// The message is a constant, so it cannot contain any of the input.
				if re.Message != privateKeyMessage || err.Error() != privateKeyMessage {
					t.Fatalf("private key refusal has message %q", err.Error())
				}
			} else if re.PrivateKey || re.Code == CodePrivateKey {
				t.Fatalf("input not seen as a private key refused as one: %q", re.Code)
			}
			return
		}
		if private {
			t.Fatalf("accepted input that IsPrivateKey reports as a private key")
		}
		if got.Key == nil || got.Type != got.Key.Type() || got.Bits <= 0 {
			t.Fatalf("incomplete ParsedKey %+v", got)
		}
		if got.FingerprintSHA256 != ssh.FingerprintSHA256(got.Key) || !strings.HasPrefix(got.FingerprintSHA256, "SHA256:") {
			t.Fatalf("fingerprint %q does not match the key", got.FingerprintSHA256)
		}
		if strings.ContainsAny(got.AuthorizedKey, "\r\n") {
			t.Fatalf("AuthorizedKey %q spans lines", got.AuthorizedKey)
		}
		again, err := Parse([]byte(got.AuthorizedKey), policy)
		if err != nil {
			t.Fatalf("AuthorizedKey %q does not re-parse: %v", got.AuthorizedKey, err)
		}
		if again.FingerprintSHA256 != got.FingerprintSHA256 || again.AuthorizedKey != got.AuthorizedKey ||
			again.Type != got.Type || again.Bits != got.Bits || again.Comment != got.Comment {
			t.Fatalf("re-parse changed the key: %+v, then %+v", got, again)
		}
	})
}
