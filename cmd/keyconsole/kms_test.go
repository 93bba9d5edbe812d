package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"keyconsole/kms"
	"keyconsole/kms/kmstest"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/secrets"
	"keyconsole/web"
)

// TestEncryptionUnavailable points the console at a KMS server that then
// stops: readiness reports it, a secret write fails with a clear 503 mapping
// and writes nothing, and everything recovers when the server returns.
func TestEncryptionUnavailable(t *testing.T) {
	srv := kmstest.Start(t)
	cfg := &config{KMSProvider: "aws", KMSKeyID: kmstest.AliasA, KMSRegion: kmstest.Region, KMSEndpoint: srv.Endpoint, DataDir: t.TempDir()}
	db := modelstest.Open(t, models.SQLite)
	audits := models.NewAuditStore(db)
	rt := &runtime{app: &app{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), db: db, audits: audits,
		recorder: audit.NewRecorder(db, audits, nil), clock: time.Now}}
	ctx := context.Background()
	if err := wireKMS(ctx, rt); err != nil {
		t.Fatal(err)
	}
	var ready func(context.Context) error
	for _, r := range rt.ready {
		if r.Name == "kms" {
			ready = r.Check
		}
	}
	if ready == nil || ready(ctx) != nil {
		t.Fatal("kms readiness missing or failing while KMS is up")
	}
	srv.Stop(t)
	probe := &kmsProbe{env: rt.envelope, every: 0}
	if err := probe.check(ctx); !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("readiness with KMS down: %v", err)
	}
	err := rt.secrets.Put(ctx, secretsRef(), []byte("value-written-while-down"))
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
	if err := rt.secrets.Put(ctx, secretsRef(), []byte("after")); err != nil {
		t.Fatalf("put after recovery: %v", err)
	}
}

func secretsRef() secrets.Ref {
	return secrets.Ref{AgencyID: 1, RecordType: "webhook_secret", RecordID: "1:1"}
}
