package sshkeys

import (
	"context"
	"strconv"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
)

// TestFault01_SFTPRefusalsSurviveAFailedFlush refuses SFTP keys while the
// PostgreSQL database refuses writes: the first refusal is written at
// once, a failed flush keeps the summary, and the next flush writes it.
func TestFault01_SFTPRefusalsSurviveAFailedFlush(t *testing.T) {
	db := modelstest.Open(t, models.Postgres)
	f := newFixture(t, db)
	ctx := context.Background()
	a := newAuthenticator(t, f, AuthConfig{})
	stranger := newGoKey(t, "stranger")
	refused := func() int {
		t.Helper()
		n := 0
		for _, ev := range f.events(t, audit.ActionSFTPLoginRefused) {
			if ev.TargetName != "alpha-prod" {
				continue
			}
			for _, kv := range audit.DecodeDetails(ev.Details) {
				if kv[0] == "count" {
					c, _ := strconv.Atoi(kv[1])
					n += c
				}
			}
		}
		return n
	}
	refuse := func() {
		t.Helper()
		if _, err := a.Authenticate(ctx, "alpha-prod", stranger.signer.PublicKey(), "192.0.2.10:40000"); err == nil {
			t.Fatal("a key nobody uploaded was accepted")
		}
	}

	refuse()
	if n := refused(); n != 1 {
		t.Errorf("the first refused key is not written at once: %d recorded", n)
	}
	restore := modelstest.RefuseWrites(t, db)
	for range 3 {
		refuse()
	}
	_ = a.Flush(ctx)
	restore()
	_ = a.Flush(ctx)
	if n := refused(); n != 4 {
		t.Errorf("refused SFTP keys recorded: %d, want 4", n)
	}
}
