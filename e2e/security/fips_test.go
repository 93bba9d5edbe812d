package security

import (
	"crypto/fips140"
	"os"
	"strings"
	"testing"

	"keyconsole/e2e/harness"
)

// TestFIPSModuleActive runs in `make test-long`, which builds everything
// with GOFIPS140=v1.0.0 and runs it with GODEBUG=fips140=only: the test
// process and the keyconsole binary the suite drives must both run the
// validated Go Cryptographic Module v1.0.0, enforced.
func TestFIPSModuleActive(t *testing.T) {
	requireLong(t)
	if os.Getenv("GOFIPS140") != "v1.0.0" || !strings.Contains(os.Getenv("GODEBUG"), "fips140=only") {
		t.Fatalf("the long suite runs under GOFIPS140=v1.0.0 GODEBUG=fips140=only (make test-long); got GOFIPS140=%q GODEBUG=%q",
			os.Getenv("GOFIPS140"), os.Getenv("GODEBUG"))
	}
	if !fips140.Enforced() || fips140.Version() != "v1.0.0" {
		t.Fatalf("test process: enforced %v, module %q; want enforced v1.0.0", fips140.Enforced(), fips140.Version())
	}
	r := harness.Exec(t, nil, "version")
	if r.Code != 0 || !strings.Contains(r.Stdout, "fips140: enabled, module v1.0.0") {
		t.Fatalf("keyconsole version under the long suite: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
