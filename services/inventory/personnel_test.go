package inventory_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"keyconsole/kms"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
	"keyconsole/services/inventory"
	"keyconsole/services/oauth"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
	"keyconsole/services/sshkeys"
	"keyconsole/services/webhooks"
)

// stack is the console's credential features on a real database with a
// local KMS keyring, and the inventory over them.
type stack struct {
	db       *models.DB
	audits   *models.AuditStore
	users    *models.UserStore
	sessions *models.SessionStore
	auth     *auth.Service
	api      *apiclients.Service
	keys     *sshkeys.Service
	keyStore *models.SSHKeyStore
	hooks    *webhooks.Service
	inv      *inventory.Service
	rec      *audit.Recorder
	demo     models.Agency
	other    models.Agency
}

func newStack(t *testing.T, db *models.DB) *stack {
	t.Helper()
	ctx := context.Background()
	st := &stack{db: db, audits: models.NewAuditStore(db), users: models.NewUserStore(db), sessions: models.NewSessionStore(db), keyStore: models.NewSSHKeyStore(db)}
	st.rec = audit.NewRecorder(db, st.audits, nil)
	agencies := models.NewAgencyStore(db)
	for _, a := range []*models.Agency{{Slug: "demo-county", Name: "Demo County"}, {Slug: "other-county", Name: "Other County"}} {
		a.CreatedAt, a.UpdatedAt = time.Now().UTC(), time.Now().UTC()
		if err := agencies.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if st.demo, err = agencies.BySlug(ctx, "demo-county"); err != nil {
		t.Fatal(err)
	}
	if st.other, err = agencies.BySlug(ctx, "other-county"); err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := local.New(master, "")
	if err != nil {
		t.Fatal(err)
	}
	sec := secrets.NewService(db, kms.NewEnvelope(kr, kms.Options{}), models.NewSealedStore(db), st.rec, nil)
	store := models.NewPolicyStore(db)
	pol := policy.NewService(db, store, st.rec, nil)
	st.auth = auth.NewService(db, st.users, agencies, st.sessions, st.rec, auth.Config{})
	st.api = apiclients.NewService(apiclients.Config{DB: db, Store: models.NewAPIClientStore(db), Agencies: agencies, Audit: st.rec, Secrets: sec, Policies: pol})
	if err := st.api.LoadPepper(ctx); err != nil {
		t.Fatal(err)
	}
	st.keys = sshkeys.NewService(db, st.keyStore, st.rec, pol, nil, nil)
	st.hooks = webhooks.NewService(db, models.NewWebhookStore(db), sec, st.rec, pol, webhooks.Options{})
	st.inv = inventory.NewService(inventory.Config{DB: db, Audit: st.rec, Policies: pol, Store: store, Users: st.users, Sessions: st.sessions})
	st.inv.Add(inventory.APICredentials{Svc: st.api})
	st.inv.Add(inventory.SSHKeys{Svc: st.keys})
	st.inv.Add(inventory.Webhooks{Svc: st.hooks})
	return st
}

// member creates a user with roles and a live session; it returns the user
// and the session token.
func (st *stack) member(t *testing.T, subject, name string, roles map[int64]string) (models.User, string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := models.User{Provider: "okta", Subject: subject, Email: subject + "@demo-county.example", Name: name, CreatedAt: now, UpdatedAt: now}
	if err := st.users.Create(ctx, &u); err != nil {
		t.Fatal(err)
	}
	// Roles come from the user's groups and the agencies' mappings, as
	// after a sign-in.
	var groups []string
	for agencyID, role := range roles {
		m := models.RoleMapping{AgencyID: agencyID, Provider: "okta", GroupValue: fmt.Sprintf("%s-%d-%s", subject, agencyID, role), Role: role, CreatedAt: now}
		if err := models.NewAgencyStore(st.db).AddMapping(ctx, &m); err != nil {
			t.Fatal(err)
		}
		groups = append(groups, m.GroupValue)
	}
	if err := st.users.SetGroups(ctx, u.ID, groups); err != nil {
		t.Fatal(err)
	}
	token := subject + "-session-token-0123456789"
	agency := st.demo.ID
	if err := st.sessions.Create(ctx, &models.Session{ID: auth.HashToken(token), UserID: u.ID, Provider: "okta", CurrentAgencyID: &agency,
		CreatedAt: now, LastSeenAt: now, AuthTime: now}); err != nil {
		t.Fatal(err)
	}
	return u, token
}

func actorOf(u models.User) audit.Actor {
	return audit.Actor{Type: audit.ActorUser, ID: strconv.FormatInt(u.ID, 10), Name: u.Display()}
}

func newKeyLine(t *testing.T) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp, ssh.MarshalAuthorizedKey(sp)
}

func TestPersonnelChangeEndToEnd(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		st := newStack(t, db)
		ada, _ := st.member(t, "ada", "Ada Admin", map[int64]string{st.demo.ID: models.RoleAdmin})
		bob, bobToken := st.member(t, "bob", "Bob Departing", map[int64]string{st.demo.ID: models.RoleAdmin})
		rita, _ := st.member(t, "rita", "Rita Reviewer", map[int64]string{st.demo.ID: models.RoleReviewer})
		multi, _ := st.member(t, "mo", "Mo Multi", map[int64]string{st.demo.ID: models.RoleAdmin, st.other.ID: models.RoleViewer})
		origin := audit.Origin{SourceIP: "127.0.0.1", RequestID: "test"}

		// Bob creates an API credential, uploads a key and reveals a webhook
		// secret Ada set up; Ada creates a credential Bob never touched.
		bobCred, bobSecret, err := st.api.Create(ctx, actorOf(bob), origin, st.demo.ID, apiclients.CreateInput{Name: "Case sync", Environment: "staging", Nonce: apiclients.NewNonce()})
		if err != nil {
			t.Fatal(err)
		}
		adaCred, _, err := st.api.Create(ctx, actorOf(ada), origin, st.demo.ID, apiclients.CreateInput{Name: "Reports feed", Environment: "production", Nonce: apiclients.NewNonce()})
		if err != nil {
			t.Fatal(err)
		}
		acc, err := st.keys.CreateAccount(ctx, actorOf(ada), origin, st.demo, models.EnvStg)
		if err != nil {
			t.Fatal(err)
		}
		bobPub, bobLine := newKeyLine(t)
		bobKey, err := st.keys.Upload(ctx, actorOf(bob), origin, st.demo.ID, acc.ID, bobLine, nil)
		if err != nil {
			t.Fatal(err)
		}
		ep, _, err := st.hooks.Create(ctx, webhooks.Caller{Actor: actorOf(ada), Origin: origin}, st.demo.ID,
			webhooks.EndpointInput{Environment: models.WebhookStaging, Name: "Case events", URL: "https://hooks.demo-county.example/ecd", Events: []string{webhooks.EventCourtDateScheduled}},
			webhooks.SecretChoice{Generate: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.hooks.Reveal(ctx, webhooks.Caller{Actor: actorOf(bob), Origin: origin}, st.demo.ID, ep.ID); err != nil {
			t.Fatal(err)
		}

		rv, err := st.inv.Review(ctx, st.demo.ID, bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		rels := map[string]string{}
		for _, e := range rv.Entries {
			rels[e.Key()] = strings.Join(e.Relations, "|")
		}
		apiKey, sshKey, hookKey, adaKey := "api_credential:"+itoa(bobCred.ID), "ssh_key:"+itoa(bobKey.ID), "webhook_secret:"+itoa(ep.ID), "api_credential:"+itoa(adaCred.ID)
		for key, want := range map[string]string{
			apiKey:  inventory.RelCreated + "|" + inventory.RelReachable,
			sshKey:  inventory.RelUploaded + "|" + inventory.RelReachable,
			hookKey: inventory.RelRevealed + "|" + inventory.RelReachable,
			adaKey:  inventory.RelReachable,
		} {
			if rels[key] != want {
				t.Errorf("Bob's relation to %s = %q, want %q (all: %v)", key, rels[key], want, rels)
			}
		}
		if len(rv.Entries) != 4 {
			t.Errorf("Bob's review has %d entries, want 4: %v", len(rv.Entries), rels)
		}
		// A reviewer reaches no secret value: only what they acted on.
		if rr, err := st.inv.Review(ctx, st.demo.ID, rita.ID); err != nil || len(rr.Entries) != 0 {
			t.Errorf("reviewer review = %+v, %v; want no entries", rr.Entries, err)
		}
		// Another agency's user is not a member here.
		if _, err := st.inv.Review(ctx, st.other.ID, bob.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("Bob reviewed in another agency: %v", err)
		}

		// Refusals change nothing.
		for _, tt := range []struct {
			name string
			in   inventory.PersonnelChange
			want error
		}{
			{"self", inventory.PersonnelChange{UserID: ada.ID, Deactivate: true}, inventory.ErrSelf},
			{"other agencies", inventory.PersonnelChange{UserID: multi.ID, Deactivate: true}, inventory.ErrOtherAgencies},
			{"nothing chosen", inventory.PersonnelChange{UserID: bob.ID}, inventory.ErrNothingToDo},
			{"another agency's credential", inventory.PersonnelChange{UserID: bob.ID, Actions: map[string]string{"api_credential:999999": "revoke"}}, models.ErrNotFound},
		} {
			in := tt.in
			in.AgencyID, in.Actor, in.ActorID, in.Origin = st.demo.ID, actorOf(ada), ada.ID, origin
			if _, err := st.inv.Personnel(ctx, in); !errors.Is(err, tt.want) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
			}
		}
		if n, _ := st.audits.Count(ctx, models.AuditFilter{AgencyID: st.demo.ID, Action: "personnel."}); n != 0 {
			t.Fatalf("refused changes were recorded: %d personnel records", n)
		}

		// Rotate the API credential and the webhook secret, revoke the key,
		// deactivate Bob.
		res, err := st.inv.Personnel(ctx, inventory.PersonnelChange{AgencyID: st.demo.ID, AgencyName: st.demo.Name, Actor: actorOf(ada), ActorID: ada.ID, Origin: origin,
			UserID: bob.ID, Deactivate: true, Reason: "left the agency",
			Actions: map[string]string{apiKey: "rotate", sshKey: "revoke", hookKey: "rotate", adaKey: "keep"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Failed() != 0 || len(res.Results) != 3 || !res.Deactivated || res.SessionsEnded != 1 {
			t.Fatalf("result: failed %d, results %d, deactivated %v, sessions %d", res.Failed(), len(res.Results), res.Deactivated, res.SessionsEnded)
		}
		var newAPISecret string
		for _, r := range res.Results {
			if r.Item.Key() == apiKey && r.Rotation != nil && r.Rotation.NewSecret != nil {
				newAPISecret = r.Rotation.NewSecret.Reveal()
			}
		}

		// The old API secret fails at the token endpoint's check; the new one works.
		if _, _, reason, err := st.api.Authenticate(ctx, bobCred.ClientID, bobSecret, time.Now()); err != nil || reason != oauth.ReasonInvalidSecret {
			t.Errorf("old API secret: reason %q, err %v; want %q", reason, err, oauth.ReasonInvalidSecret)
		}
		if _, _, reason, err := st.api.Authenticate(ctx, bobCred.ClientID, oauth.NewClientSecret(newAPISecret), time.Now()); err != nil || reason != "" {
			t.Errorf("new API secret refused: %q %v", reason, err)
		}
		// The revoked key fails public-key authentication at the SFTP server.
		authn, err := sshkeys.NewAuthenticator(db, st.keyStore, st.rec, sshkeys.AuthConfig{Root: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = authn.Close(ctx) }()
		if _, err := authn.Authenticate(ctx, acc.Name, bobPub, "127.0.0.1:50000"); !errors.Is(err, sshkeys.ErrRefused) {
			t.Errorf("revoked key: err = %v, want refused", err)
		}
		// The webhook secret Bob saw is no longer the current one.
		after, err := st.hooks.Endpoint(ctx, st.demo.ID, ep.ID)
		if err != nil || after.SecretVersion != ep.SecretVersion+1 {
			t.Errorf("webhook secret version %d -> %d (%v)", ep.SecretVersion, after.SecretVersion, err)
		}
		// Ada's credential was kept.
		if c, err := st.api.Get(ctx, st.demo.ID, adaCred.ID); err != nil || c.Status != apiclients.StatusActive || c.RotatedAt != nil {
			t.Errorf("kept credential changed: %+v %v", c.Status, err)
		}
		// Bob is disabled and his open session is refused.
		if u, _ := st.users.ByID(ctx, bob.ID); !u.Disabled() {
			t.Errorf("Bob is not disabled")
		}
		if _, err := st.auth.Resolve(ctx, bobToken, origin); !errors.Is(err, auth.ErrNoSession) && !errors.Is(err, auth.ErrDisabled) {
			t.Errorf("Bob's session resolved after deactivation: %v", err)
		}

		// Every record of the operation carries its id.
		log, err := st.inv.OperationLog(ctx, st.demo.ID, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, r := range log {
			actions = append(actions, r.Action)
			if r.Details["operation"] != res.ID {
				t.Errorf("%s lacks the operation id", r.Action)
			}
		}
		// The features' own records of each change carry the operation id too.
		want := []string{audit.ActionPersonnelStart, audit.ActionUserDisable, audit.ActionPersonnelSessionsEnd,
			audit.ActionAPICredentialRegenerate, audit.ActionPersonnelRotate, audit.ActionSSHKeyRevoke, audit.ActionPersonnelRevoke,
			audit.ActionWebhookSecretRotate, audit.ActionPersonnelRotate, audit.ActionPersonnelEnd}
		if !sameSet(strings.Join(actions, " "), strings.Join(want, " ")) || actions[0] != want[0] || actions[len(actions)-1] != audit.ActionPersonnelEnd {
			t.Errorf("operation records = %v, want %v (start first, end last)", actions, want)
		}
		// The features recorded their own changes, by Ada.
		for _, a := range []string{audit.ActionAPICredentialRegenerate, audit.ActionSSHKeyRevoke, audit.ActionWebhookSecretRotate} {
			evs, err := st.audits.Page(ctx, models.AuditFilter{AgencyID: st.demo.ID, Action: a}, 10)
			if err != nil || len(evs) != 1 || evs[0].ActorID != itoa(ada.ID) {
				t.Errorf("%s records: %d (%v)", a, len(evs), err)
			}
		}
		// No record holds a secret.
		all, err := st.audits.Page(ctx, models.AuditFilter{AgencyID: st.demo.ID}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range all {
			b, _ := json.Marshal(e)
			if strings.Contains(string(b), bobSecret.Reveal()) || strings.Contains(string(b), newAPISecret) {
				t.Fatalf("audit record %s carries a secret", e.Action)
			}
		}
		if rep, err := audit.NewVerifier(st.audits).Verify(ctx, st.demo.ID); err != nil || !rep.Intact {
			t.Errorf("chain: intact %v, %v", rep.Intact, err)
		}
	})
}

func TestBulkRevoke(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		st := newStack(t, db)
		ada, _ := st.member(t, "ada", "Ada Admin", map[int64]string{st.demo.ID: models.RoleAdmin})
		origin := audit.Origin{SourceIP: "127.0.0.1"}
		c1, s1, err := st.api.Create(ctx, actorOf(ada), origin, st.demo.ID, apiclients.CreateInput{Name: "One", Environment: "staging", Nonce: apiclients.NewNonce()})
		if err != nil {
			t.Fatal(err)
		}
		c2, _, err := st.api.Create(ctx, actorOf(ada), origin, st.demo.ID, apiclients.CreateInput{Name: "Two", Environment: "staging", Nonce: apiclients.NewNonce()})
		if err != nil {
			t.Fatal(err)
		}
		otherCred, _, err := st.api.Create(ctx, actorOf(ada), origin, st.other.ID, apiclients.CreateInput{Name: "Theirs", Environment: "staging", Nonce: apiclients.NewNonce()})
		if err != nil {
			t.Fatal(err)
		}
		// Another agency's id fails the whole request before anything changes.
		_, err = st.inv.BulkRevoke(ctx, inventory.BulkRevoke{AgencyID: st.demo.ID, Actor: actorOf(ada), Origin: origin,
			Keys: []string{"api_credential:" + itoa(c1.ID), "api_credential:" + itoa(otherCred.ID)}})
		if !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("err = %v, want not found", err)
		}
		if c, _ := st.api.Get(ctx, st.demo.ID, c1.ID); c.Status != apiclients.StatusActive {
			t.Fatalf("a refused bulk revoke revoked %s", c.Name)
		}
		op, err := st.inv.BulkRevoke(ctx, inventory.BulkRevoke{AgencyID: st.demo.ID, Actor: actorOf(ada), Origin: origin, Reason: "hygiene review",
			Keys: []string{"api_credential:" + itoa(c1.ID), "api_credential:" + itoa(c2.ID), "api_credential:" + itoa(c1.ID)}})
		if err != nil || len(op.Results) != 2 || op.Failed() != 0 {
			t.Fatalf("bulk revoke: %+v %v", op, err)
		}
		if _, _, reason, _ := st.api.Authenticate(ctx, c1.ClientID, s1, time.Now()); reason != oauth.ReasonRevoked {
			t.Errorf("revoked credential authenticates: reason %q", reason)
		}
		// Revoking again reports the failure per item, linked all the same.
		op2, err := st.inv.BulkRevoke(ctx, inventory.BulkRevoke{AgencyID: st.demo.ID, Actor: actorOf(ada), Origin: origin, Keys: []string{"api_credential:" + itoa(c2.ID)}})
		if err != nil || op2.Failed() != 1 || op2.Results[0].Reason != "already revoked or expired" {
			t.Fatalf("second revoke: %+v %v", op2, err)
		}
		log, err := st.inv.OperationLog(ctx, st.demo.ID, op.ID)
		// Start, each credential's own revoke record and the hygiene record, end.
		if err != nil || len(log) != 6 || log[0].Action != audit.ActionHygieneRevokeStart || log[1].Action != audit.ActionAPICredentialRevoke ||
			log[3].Action != audit.ActionAPICredentialRevoke || log[5].Action != audit.ActionHygieneRevokeEnd {
			t.Fatalf("operation log: %+v %v", log, err)
		}
		if _, err := st.inv.OperationLog(ctx, st.other.ID, op.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("another agency reads the operation: %v", err)
		}
		if _, err := st.inv.OperationLog(ctx, st.demo.ID, "%"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("a wildcard operation id matched: %v", err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
