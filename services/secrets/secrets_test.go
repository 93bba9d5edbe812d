package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"keyconsole/kms"
	kmsaws "keyconsole/kms/aws"
	"keyconsole/kms/kmstest"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/secrets"
)

func localKeyring(t *testing.T, seed byte) kms.Keyring {
	t.Helper()
	key := bytes.Repeat([]byte{seed}, 32)
	kr, err := local.New(key, "")
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newService(db *models.DB, kr kms.Keyring) (*secrets.Service, *models.AuditStore) {
	audits := models.NewAuditStore(db)
	rec := audit.NewRecorder(db, audits, nil)
	return secrets.NewService(db, kms.NewEnvelope(kr, kms.Options{}), models.NewSealedStore(db), rec, nil), audits
}

var sys = audit.Actor{Type: audit.ActorSystem, ID: "test"}

func TestPutGetAndBinding(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		svc, _ := newService(db, localKeyring(t, 1))
		a := secrets.Ref{AgencyID: 7, RecordType: "webhook_secret", RecordID: "1:1"}
		b := secrets.Ref{AgencyID: 7, RecordType: "webhook_secret", RecordID: "2:1"}
		if err := svc.Put(ctx, a, []byte("alpha-secret-value")); err != nil {
			t.Fatal(err)
		}
		if err := svc.Put(ctx, b, []byte("bravo-secret-value")); err != nil {
			t.Fatal(err)
		}
		got, err := svc.Get(ctx, a)
		if err != nil || string(got) != "alpha-secret-value" {
			t.Fatalf("get: %q %v", got, err)
		}
		// Nothing readable is stored.
		var blobs [][]byte
		if err := db.Gorm.Raw("SELECT blob FROM sealed_secrets").Scan(&blobs).Error; err != nil {
			t.Fatal(err)
		}
		for _, bl := range blobs {
			if bytes.Contains(bl, []byte("secret-value")) {
				t.Fatal("plaintext stored")
			}
		}
		// A ciphertext copied onto another record's row does not open there.
		if err := db.Gorm.Exec("UPDATE sealed_secrets SET blob = (SELECT blob FROM sealed_secrets WHERE record_id = '1:1') WHERE record_id = '2:1'").Error; err != nil {
			t.Fatal(err)
		}
		_, err = svc.Get(ctx, b)
		if !errors.Is(err, kms.ErrIntegrity) {
			t.Fatalf("moved blob: want ErrIntegrity, got %v", err)
		}
		if strings.Contains(err.Error(), "alpha") {
			t.Fatal("error names the secret")
		}
		// Another agency's reference does not find it at all.
		if _, err := svc.Get(ctx, secrets.Ref{AgencyID: 8, RecordType: "webhook_secret", RecordID: "1:1"}); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("other agency: %v", err)
		}
		// A wrong master key refuses clearly.
		other, _ := newService(db, localKeyring(t, 2))
		if _, err := other.Get(ctx, a); !errors.Is(err, kms.ErrIntegrity) {
			t.Fatalf("wrong master key: %v", err)
		}
		if err := svc.Delete(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Get(ctx, a); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("deleted secret: %v", err)
		}
	})
}

func TestPutInsideFailedTransactionWritesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		svc, _ := newService(db, localKeyring(t, 3))
		ref := secrets.Ref{AgencyID: 1, RecordType: "t", RecordID: "1"}
		boom := errors.New("later step failed")
		err := db.Tx(ctx, func(ctx context.Context) error {
			if err := svc.Put(ctx, ref, []byte("x-secret")); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, err := svc.Get(ctx, ref); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("rolled-back secret exists: %v", err)
		}
	})
}

func awsKeyring(t *testing.T, endpoint, keyID string) *kmsaws.Keyring {
	t.Helper()
	kr, err := kmsaws.New(context.Background(), kmsaws.Options{KeyID: keyID, Region: kmstest.Region, Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.Resolve(context.Background()); err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestRewrapAcrossKeys seals under key A, rewraps under key B with an
// interruption half-way, disables A in the KMS server, and opens everything.
func TestRewrapAcrossKeys(t *testing.T) {
	srv := kmstest.Start(t)
	for _, d := range modelstest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			db := modelstest.Open(t, d)
			ctx := context.Background()
			svcA, audits := newService(db, awsKeyring(t, srv.Endpoint, kmstest.AliasA))
			const n = 45
			for i := 0; i < n; i++ {
				ref := secrets.Ref{AgencyID: int64(1 + i%3), RecordType: "webhook_secret", RecordID: fmt.Sprint(i)}
				if err := svcA.Put(ctx, ref, []byte(fmt.Sprintf("secret-%02d", i))); err != nil {
					t.Fatal(err)
				}
			}
			svcB, _ := newService(db, awsKeyring(t, srv.Endpoint, kmstest.AliasB))
			// Interrupt after the first batch.
			cctx, cancel := context.WithCancel(ctx)
			p, err := svcB.Rewrap(cctx, sys, audit.Origin{}, 10, func(p secrets.RewrapProgress) {
				if p.Done >= 10 {
					cancel()
				}
			})
			cancel()
			if err == nil || p.Done < 10 || p.Done >= n {
				t.Fatalf("interrupted rewrap: %+v %v", p, err)
			}
			p, err = svcB.Rewrap(ctx, sys, audit.Origin{}, 10, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.Total != p.Done || p.Done == 0 {
				t.Fatalf("resumed rewrap: %+v", p)
			}
			// A run with nothing left does nothing.
			if p, err := svcB.Rewrap(ctx, sys, audit.Origin{}, 10, nil); err != nil || p.Total != 0 {
				t.Fatalf("idle rewrap: %+v %v", p, err)
			}
			srv.DisableKey(t, kmstest.KeyA)
			defer srv.EnableKey(t, kmstest.KeyA)
			fresh, _ := newService(db, awsKeyring(t, srv.Endpoint, kmstest.AliasB))
			for i := 0; i < n; i++ {
				ref := secrets.Ref{AgencyID: int64(1 + i%3), RecordType: "webhook_secret", RecordID: fmt.Sprint(i)}
				got, err := fresh.Get(ctx, ref)
				if err != nil || string(got) != fmt.Sprintf("secret-%02d", i) {
					t.Fatalf("record %d after rewrap and disable: %q %v", i, got, err)
				}
			}
			evs, err := audits.Page(ctx, models.AuditFilter{AgencyID: models.PlatformAgencyID}, 10)
			if err != nil {
				t.Fatal(err)
			}
			var starts, ends int
			for _, e := range evs {
				switch e.Action {
				case secrets.ActionRewrapStart:
					starts++
				case secrets.ActionRewrapEnd:
					ends++
				}
			}
			if starts != 3 || ends != 3 {
				t.Fatalf("rewrap audit: %d starts %d ends", starts, ends)
			}
		})
	}
}

// TestUnavailableKMSWritesNothing stops the KMS server: Put fails with
// ErrUnavailable and leaves no row; it recovers when the server returns.
func TestUnavailableKMSWritesNothing(t *testing.T) {
	srv := kmstest.Start(t)
	db := modelstest.Open(t, models.SQLite)
	ctx := context.Background()
	svc, _ := newService(db, awsKeyring(t, srv.Endpoint, kmstest.AliasA))
	srv.Stop(t)
	ref := secrets.Ref{AgencyID: 1, RecordType: "webhook_secret", RecordID: "9"}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := svc.Put(cctx, ref, []byte("while-down")); !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	var n int64
	db.Gorm.Model(&models.SealedSecret{}).Count(&n)
	if n != 0 {
		t.Fatalf("%d rows written while KMS was down", n)
	}
	srv.Restart(t)
	if err := svc.Put(ctx, ref, []byte("after")); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}
