package apiclients_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"keyconsole/kms"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/oauth"
	"keyconsole/services/secrets"
)

// TestFinding06_ReadinessOpensThePepperAndTheSigningKey: CheckPepper and
// Check succeed on a replica that has loaded its key material and can
// still open it through KMS; they fail on a replica with the wrong master
// key (nothing loaded), and on a loaded replica once the stored material
// no longer opens with its master key.
func TestFinding06_ReadinessOpensThePepperAndTheSigningKey(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		clk := &clock{now: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
		good := keyReplicaOf(t, db, clk)
		if err := good.svc.LoadPepper(ctx); err != nil {
			t.Fatal(err)
		}
		if err := good.keys.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if err := good.svc.CheckPepper(ctx); err != nil {
			t.Fatalf("pepper check on a loaded replica: %v", err)
		}
		if err := good.keys.Check(ctx); err != nil {
			t.Fatalf("signing key check on a loaded replica: %v", err)
		}

		// Another replica of the same database with the wrong master key.
		kr, err := local.New(bytes.Repeat([]byte{8}, local.MasterKeySize), "")
		if err != nil {
			t.Fatal(err)
		}
		rec := audit.NewRecorder(db, models.NewAuditStore(db), clk.Now)
		wrongSecrets := secrets.NewService(db, kms.NewEnvelope(kr, kms.Options{}), models.NewSealedStore(db), rec, clk.Now)
		store := models.NewAPIClientStore(db)
		wrongSvc := apiclients.NewService(apiclients.Config{DB: db, Store: store, Agencies: models.NewAgencyStore(db), Audit: rec, Secrets: wrongSecrets, Clock: clk.Now})
		wrongIss, err := oauth.NewIssuer(oauth.IssuerConfig{Issuer: "https://keys.example.gov", Audience: "https://keys.example.gov/api", Clock: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		wrongKeys := apiclients.NewKeyManager(apiclients.KeyConfig{DB: db, Store: models.NewTokenKeyStore(db), Locker: store, Secrets: wrongSecrets, Audit: rec, Issuer: wrongIss, Clock: clk.Now})
		if err := wrongSvc.LoadPepper(ctx); err == nil {
			t.Fatal("the pepper loaded with the wrong master key")
		}
		if err := wrongKeys.Ensure(ctx); err == nil {
			t.Fatal("the signing keys loaded with the wrong master key")
		}
		if err := wrongSvc.CheckPepper(ctx); !errors.Is(err, apiclients.ErrNotReady) {
			t.Fatalf("pepper check with the wrong master key: %v", err)
		}
		if err := wrongKeys.Check(ctx); !errors.Is(err, apiclients.ErrNoSigningKey) {
			t.Fatalf("signing key check with the wrong master key: %v", err)
		}
		if _, n := wrongIss.PublishedJWKS(); n != 0 {
			t.Fatalf("%d keys published with the wrong master key", n)
		}

		// The loaded replica's checks open the stored material, not only
		// what it holds in memory: sealed under another master key, it no
		// longer opens, and the checks say so.
		active, _ := good.iss.Keys()
		for _, ref := range []secrets.Ref{
			{AgencyID: models.PlatformAgencyID, RecordType: apiclients.PepperRecordType, RecordID: apiclients.PepperID},
			{AgencyID: models.PlatformAgencyID, RecordType: apiclients.TokenKeyRecordType, RecordID: active.KID},
		} {
			if err := wrongSecrets.Put(ctx, ref, bytes.Repeat([]byte{1}, 32)); err != nil {
				t.Fatal(err)
			}
		}
		if err := good.svc.CheckPepper(ctx); err == nil || !errors.Is(err, kms.ErrIntegrity) {
			t.Fatalf("pepper check with a stored pepper it cannot open: %v", err)
		}
		if err := good.keys.Check(ctx); err == nil || !errors.Is(err, kms.ErrIntegrity) {
			t.Fatalf("signing key check with a stored key it cannot open: %v", err)
		}
	})
}
