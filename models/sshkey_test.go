package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// sshFixture is two agencies, each with a prod account.
type sshFixture struct {
	store      *models.SSHKeyStore
	agencyA    models.Agency
	agencyB    models.Agency
	accA, accB models.SFTPAccount
	now        time.Time
}

func newSSHFixture(t *testing.T, db *models.DB) sshFixture {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	agencies := models.NewAgencyStore(db)
	f := sshFixture{store: models.NewSSHKeyStore(db), now: now}
	for _, a := range []*models.Agency{{Slug: "alpha", Name: "Alpha"}, {Slug: "beta", Name: "Beta"}} {
		a.CreatedAt, a.UpdatedAt = now, now
		if err := agencies.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		if f.agencyA.ID == 0 {
			f.agencyA = *a
		} else {
			f.agencyB = *a
		}
	}
	f.accA = models.SFTPAccount{AgencyID: f.agencyA.ID, Name: "alpha-prod", Environment: models.EnvProd, CreatedAt: now}
	f.accB = models.SFTPAccount{AgencyID: f.agencyB.ID, Name: "beta-prod", Environment: models.EnvProd, CreatedAt: now}
	for _, a := range []*models.SFTPAccount{&f.accA, &f.accB} {
		if err := f.store.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f sshFixture) key(t *testing.T, acc models.SFTPAccount, fp string, expires *time.Time) models.SSHKey {
	t.Helper()
	k := models.SSHKey{AgencyID: acc.AgencyID, AccountID: acc.ID, KeyType: "ssh-ed25519", Bits: 256, Fingerprint: fp,
		PublicKey: "ssh-ed25519 AAAA" + fp, Comment: "c-" + fp, CreatedAt: f.now, ExpiresAt: expires}
	if err := f.store.CreateKey(context.Background(), &k); err != nil {
		t.Fatalf("create key %s: %v", fp, err)
	}
	return k
}

func TestSFTPAccountsUniqueAndScoped(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newSSHFixture(t, db)
		tests := []struct {
			name string
			acc  models.SFTPAccount
		}{
			{"same name in another agency", models.SFTPAccount{AgencyID: f.agencyB.ID, Name: "alpha-prod", Environment: models.EnvStg, CreatedAt: f.now}},
			{"second prod account of an agency", models.SFTPAccount{AgencyID: f.agencyA.ID, Name: "alpha-prod2", Environment: models.EnvProd, CreatedAt: f.now}},
		}
		for _, tc := range tests {
			acc := tc.acc
			if err := f.store.CreateAccount(ctx, &acc); !errors.Is(err, models.ErrConflict) {
				t.Errorf("%s: err = %v, want ErrConflict", tc.name, err)
			}
		}
		if _, err := f.store.Account(ctx, f.agencyB.ID, f.accA.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("another agency's account: err = %v, want ErrNotFound", err)
		}
		got, err := f.store.AccountByName(ctx, "beta-prod")
		if err != nil || got.ID != f.accB.ID {
			t.Errorf("AccountByName = %+v, %v", got, err)
		}
		list, err := f.store.Accounts(ctx, f.agencyA.ID)
		if err != nil || len(list) != 1 || list[0].Name != "alpha-prod" {
			t.Errorf("Accounts(alpha) = %+v, %v", list, err)
		}
	})
}

func TestSSHKeyActiveFingerprintUniquePerAgency(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newSSHFixture(t, db)
		stg := models.SFTPAccount{AgencyID: f.agencyA.ID, Name: "alpha-stg", Environment: models.EnvStg, CreatedAt: f.now}
		if err := f.store.CreateAccount(ctx, &stg); err != nil {
			t.Fatal(err)
		}
		k := f.key(t, f.accA, "SHA256:one", nil)
		dup := models.SSHKey{AgencyID: f.agencyA.ID, AccountID: stg.ID, KeyType: "ssh-ed25519", Bits: 256, Fingerprint: "SHA256:one", PublicKey: "x", CreatedAt: f.now}
		if err := f.store.CreateKey(ctx, &dup); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("second active key with the same fingerprint in the agency: err = %v, want ErrConflict", err)
		}
		// Another agency's copy of the key is its own.
		theirs := f.key(t, f.accB, "SHA256:one", nil)
		if got, err := f.store.ActiveByFingerprint(ctx, f.agencyB.ID, "SHA256:one"); err != nil || got.ID != theirs.ID {
			t.Fatalf("ActiveByFingerprint(beta) = %d, %v; want %d", got.ID, err, theirs.ID)
		}
		ok, err := f.store.Revoke(ctx, f.agencyA.ID, k.ID, f.now, "Ada")
		if err != nil || !ok {
			t.Fatalf("Revoke = %v, %v", ok, err)
		}
		if ok, err := f.store.Revoke(ctx, f.agencyA.ID, k.ID, f.now, "Ada"); err != nil || ok {
			t.Fatalf("second Revoke = %v, %v; want false", ok, err)
		}
		dup.ID = 0
		if err := f.store.CreateKey(ctx, &dup); err != nil {
			t.Fatalf("same fingerprint after revocation: %v", err)
		}
		got, err := f.store.ActiveByFingerprint(ctx, f.agencyA.ID, "SHA256:one")
		if err != nil || got.ID != dup.ID {
			t.Fatalf("ActiveByFingerprint = %d, %v; want %d", got.ID, err, dup.ID)
		}
	})
}

func TestSSHKeyTenancy(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newSSHFixture(t, db)
		k := f.key(t, f.accA, "SHA256:a", nil)
		if _, err := f.store.Key(ctx, f.agencyB.ID, k.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("Key from another agency: err = %v, want ErrNotFound", err)
		}
		if ok, err := f.store.Revoke(ctx, f.agencyB.ID, k.ID, f.now, "Eve"); err != nil || ok {
			t.Errorf("Revoke from another agency = %v, %v; want false", ok, err)
		}
		if keys, err := f.store.Keys(ctx, f.agencyB.ID); err != nil || len(keys) != 0 {
			t.Errorf("Keys(beta) = %d keys, %v", len(keys), err)
		}
		if got, err := f.store.Key(ctx, f.agencyA.ID, k.ID); err != nil || got.RevokedAt != nil {
			t.Errorf("key after another agency's revoke: %+v, %v", got, err)
		}
	})
}

func TestSSHKeyLoginAndAuthorizedKeys(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newSSHFixture(t, db)
		past, future := f.now.Add(-time.Hour), f.now.Add(time.Hour)
		active := f.key(t, f.accA, "SHA256:active", nil)
		later := f.key(t, f.accA, "SHA256:later", &future)
		f.key(t, f.accA, "SHA256:past", &past)
		revoked := f.key(t, f.accA, "SHA256:revoked", nil)
		f.key(t, f.accB, "SHA256:other", nil)
		if _, err := f.store.Revoke(ctx, f.agencyA.ID, revoked.ID, f.now, "Ada"); err != nil {
			t.Fatal(err)
		}

		lk, err := f.store.LoginKey(ctx, "alpha-prod", "SHA256:active")
		if err != nil || lk.ID != active.ID || lk.AccountName != "alpha-prod" || lk.PublicKey != active.PublicKey {
			t.Fatalf("LoginKey = %+v, %v", lk, err)
		}
		if _, err := f.store.LoginKey(ctx, "beta-prod", "SHA256:active"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("LoginKey(another account): err = %v, want ErrNotFound", err)
		}
		if _, err := f.store.LoginKey(ctx, "alpha-prod", "SHA256:revoked"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("LoginKey(revoked): err = %v, want ErrNotFound", err)
		}
		if id, err := f.store.ActiveKeyID(ctx, f.accA.ID, "SHA256:later"); err != nil || id != later.ID {
			t.Errorf("ActiveKeyID = %d, %v; want %d", id, err, later.ID)
		}
		if _, err := f.store.ActiveKeyID(ctx, f.accB.ID, "SHA256:later"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("ActiveKeyID of another account: err = %v", err)
		}

		got, err := f.store.AuthorizedKeys(ctx, "alpha-prod", f.now)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, k := range got {
			lines = append(lines, k.PublicKey+" "+k.Comment)
		}
		want := []string{"ssh-ed25519 AAAASHA256:active c-SHA256:active", "ssh-ed25519 AAAASHA256:later c-SHA256:later"}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("AuthorizedKeys = %q, want %q", lines, want)
		}
		if got, err := f.store.AuthorizedKeys(ctx, "nobody", f.now); err != nil || len(got) != 0 {
			t.Errorf("AuthorizedKeys(unknown) = %v, %v", got, err)
		}
		// At the instant of expiry the key is gone.
		if got, err := f.store.AuthorizedKeys(ctx, "alpha-prod", future); err != nil || len(got) != 1 {
			t.Errorf("AuthorizedKeys at expiry = %v, %v; want only the key without expiry", got, err)
		}
	})
}

func TestSSHKeyExpiryMarkedOnce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newSSHFixture(t, db)
		past, future := f.now.Add(-time.Minute), f.now.Add(time.Minute)
		due := f.key(t, f.accA, "SHA256:due", &past)
		f.key(t, f.accA, "SHA256:notyet", &future)
		f.key(t, f.accB, "SHA256:never", nil)

		list, err := f.store.DueForExpiry(ctx, f.now, 10)
		if err != nil || len(list) != 1 || list[0].ID != due.ID {
			t.Fatalf("DueForExpiry = %+v, %v", list, err)
		}
		for i, want := range []bool{true, false} {
			ok, err := f.store.MarkExpired(ctx, due.ID, f.now)
			if err != nil || ok != want {
				t.Fatalf("MarkExpired #%d = %v, %v; want %v", i+1, ok, err, want)
			}
		}
		if list, err := f.store.DueForExpiry(ctx, f.now, 10); err != nil || len(list) != 0 {
			t.Fatalf("DueForExpiry after marking = %+v, %v", list, err)
		}
		k, err := f.store.Key(ctx, f.agencyA.ID, due.ID)
		if err != nil || k.Status(f.now) != models.SSHKeyExpired || k.ExpiredAt == nil {
			t.Fatalf("expired key = %+v, %v", k, err)
		}
		if _, err := f.store.LoginKey(ctx, "alpha-prod", "SHA256:due"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("LoginKey of an expired key: err = %v", err)
		}
	})
}

func TestSSHKeyStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Second)
	tests := []struct {
		name string
		key  models.SSHKey
		want string
	}{
		{"no expiry", models.SSHKey{}, models.SSHKeyActive},
		{"expiry ahead", models.SSHKey{ExpiresAt: &future}, models.SSHKeyActive},
		{"expiry now", models.SSHKey{ExpiresAt: &now}, models.SSHKeyExpired},
		{"expiry passed, not recorded", models.SSHKey{ExpiresAt: &past}, models.SSHKeyExpired},
		{"expiry recorded", models.SSHKey{ExpiredAt: &past}, models.SSHKeyExpired},
		{"revoked", models.SSHKey{RevokedAt: &past, ExpiresAt: &past}, models.SSHKeyRevoked},
	}
	for _, tc := range tests {
		if got := tc.key.Status(now); got != tc.want {
			t.Errorf("%s: Status = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSSHKeyTouchLastUsedNeverLowers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newSSHFixture(t, db)
		a := f.key(t, f.accA, "SHA256:a", nil)
		b := f.key(t, f.accA, "SHA256:b", nil)
		t1, t2 := f.now.Add(time.Minute), f.now.Add(2*time.Minute)
		if err := f.store.TouchLastUsed(ctx, map[int64]time.Time{a.ID: t2, b.ID: t1}); err != nil {
			t.Fatal(err)
		}
		if err := f.store.TouchLastUsed(ctx, map[int64]time.Time{a.ID: t1, b.ID: t2}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			id   int64
			want time.Time
		}{{a.ID, t2}, {b.ID, t2}} {
			k, err := f.store.Key(ctx, f.agencyA.ID, c.id)
			if err != nil || k.LastUsedAt == nil || !k.LastUsedAt.Equal(c.want) {
				t.Errorf("key %d last used %v, %v; want %v", c.id, k.LastUsedAt, err, c.want)
			}
		}
	})
}

// TestSSHKeyLookupsUseIndexes checks on SQLite that the authentication and
// authorized_keys lookups read through indexes, not a scan of every key.
func TestSSHKeyLookupsUseIndexes(t *testing.T) {
	db := modelstest.Open(t, models.SQLite)
	tests := []struct {
		name, query string
		args        []any
		want        string
	}{
		{"login key", "SELECT ssh_keys.*, sftp_accounts.name FROM ssh_keys JOIN sftp_accounts ON sftp_accounts.id = ssh_keys.account_id WHERE ssh_keys.fingerprint = ? AND ssh_keys.revoked_at IS NULL AND ssh_keys.expired_at IS NULL",
			[]any{"SHA256:x"}, "ssh_keys_active_fingerprint"},
		{"authorized keys", "SELECT ssh_keys.public_key FROM ssh_keys JOIN sftp_accounts ON sftp_accounts.id = ssh_keys.account_id WHERE sftp_accounts.name = ? AND ssh_keys.revoked_at IS NULL AND ssh_keys.expired_at IS NULL AND (ssh_keys.expires_at IS NULL OR ssh_keys.expires_at > ?) ORDER BY ssh_keys.id",
			[]any{"a-prod", time.Now().UTC()}, "ssh_keys_account"},
	}
	for _, tc := range tests {
		rows, err := db.SQL().Query("EXPLAIN QUERY PLAN "+tc.query, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if !strings.Contains(joined, tc.want) || strings.Contains(joined, "SCAN ssh_keys") {
			t.Errorf("%s: plan %q does not search %s", tc.name, joined, tc.want)
		}
		if strings.Contains(joined, "SCAN sftp_accounts") {
			t.Errorf("%s: plan %q scans the accounts", tc.name, joined)
		}
	}
}
