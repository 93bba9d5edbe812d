package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"keyconsole/app/core"
	"keyconsole/kms"
	kmsaws "keyconsole/kms/aws"
	"keyconsole/kms/kmstest"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/secrets"
	"keyconsole/web"
)

// TestEncryptionUnavailable points the console at a KMS server that then
// stops: readiness reports it, a secret write fails with a clear 503 mapping
// and writes nothing, and everything recovers when the server returns.
func TestEncryptionUnavailable(t *testing.T) {
	srv := kmstest.Start(t)
	ctx := context.Background()
	kr, err := kmsaws.New(ctx, kmsaws.Options{KeyID: kmstest.AliasA, Region: kmstest.Region, Endpoint: srv.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	db := modelstest.Open(t, models.SQLite)
	enc := newEncryption(core.New(db, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil))), kr)
	ready := enc.Ready.Check
	if enc.Ready.Name != "kms" || ready(ctx) != nil {
		t.Fatal("kms readiness missing or failing while KMS is up")
	}
	srv.Stop(t)
	probe := &kmsProbe{env: enc.Envelope, every: 0}
	if err := probe.check(ctx); !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("readiness with KMS down: %v", err)
	}
	err = enc.Secrets.Put(ctx, secretsRef(), []byte("value-written-while-down"))
	if !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("put with KMS down: %v", err)
	}
	status, heading, msg := web.ErrorResponse(err)
	if status != http.StatusServiceUnavailable || !strings.Contains(heading, "Encryption is unavailable") || !strings.Contains(msg, "Nothing was changed") {
		t.Fatalf("mapping: %d %q %q", status, heading, msg)
	}
	var n int64
	db.Gorm.Model(&models.SealedSecret{}).Count(&n)
	if n != 0 {
		t.Fatalf("%d secrets written while KMS was down", n)
	}
	srv.Restart(t)
	if err := probe.check(ctx); err != nil {
		t.Fatalf("readiness after recovery: %v", err)
	}
	if err = enc.Secrets.Put(ctx, secretsRef(), []byte("after")); err != nil {
		t.Fatalf("put after recovery: %v", err)
	}
}

func secretsRef() secrets.Ref {
	return secrets.Ref{AgencyID: 1, RecordType: "webhook_secret", RecordID: "1:1"}
}
