// Package reportstest seeds real credentials of every type, at known ages,
// for the tests of the reports: two agencies' API credentials, SSH keys,
// webhook secrets and an IdP client secret expiry, created through the
// features' own services on a real database with a local KMS keyring, and
// the states each must show in the inventory at a fixed moment.
package reportstest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"keyconsole/app/core"
	"keyconsole/kms"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
	"keyconsole/services/webhooks"
)

// Now is the moment the seeded inventory is measured at.
var Now = time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)

// Want is one credential of the demo agency and what the inventory must say
// of it at Now.
type Want struct {
	Type, Name, Environment, Status string
	ID                              int64
	// Reference is the non-secret identifier (client_id, fingerprint,
	// endpoint URL without query, provider id).
	Reference                     string
	AgeState, UseState, Compliant string
	AgeDays                       int
}

// Fixture is the seeded data and the services over it.
type Fixture struct {
	DB *models.DB
	// Core is the shared stores and services over DB, on the fixture's clock.
	Core      core.Core
	Audit     *audit.Recorder
	Policies  *policy.Service
	Inventory *inventory.Service
	Demo      models.Agency
	Other     models.Agency
	// Want lists the demo agency's credentials.
	Want []Want
	// OtherNames and OtherRefs are the other agency's credential names and
	// references, which must never show in the demo agency's reports.
	OtherNames, OtherRefs []string
	// Secrets is every secret value handed out while seeding, in both
	// agencies, and a token carried in a webhook URL's query.
	Secrets []string

	mu  sync.Mutex
	now time.Time
}

// Clock is the fixture's clock: the seeding times while seeding, then Now.
func (f *Fixture) Clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fixture) at(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// Provider is the sign-in provider whose client secret expiry is recorded.
var Provider = inventory.Provider{ID: "okta", Label: "Okta", Kind: "okta"}

// Seed creates the credentials of the demo and other agencies (which must
// exist in db) through the real feature services and returns the fixture,
// its clock set to Now.
func Seed(t testing.TB, db *models.DB, demo, other models.Agency) *Fixture {
	t.Helper()
	ctx := context.Background()
	f := &Fixture{DB: db, Demo: demo, Other: other, now: Now}
	// The services are built as the console builds them (package core).
	c := core.New(db, f.Clock, nil)
	f.Core, f.Audit = c, c.Recorder
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	kr, err := local.New(master, "")
	if err != nil {
		t.Fatal(err)
	}
	sec := core.NewSecrets(c, kms.NewEnvelope(kr, kms.Options{}))
	f.Policies = core.NewPolicies(c)
	apiStore := models.NewAPIClientStore(db)
	api := core.NewAPIClients(c, sec, f.Policies)
	if err := api.LoadPepper(ctx); err != nil {
		t.Fatal(err)
	}
	keyStore := models.NewSSHKeyStore(db)
	keys := core.NewSSHKeys(c, keyStore, f.Policies)
	hooks := core.NewWebhooks(c, sec, f.Policies, core.WebhookConfig{})
	f.Inventory = core.NewInventory(c, f.Policies, models.NewPolicyStore(db), api, keys, hooks, []inventory.Provider{Provider})

	actor := audit.Actor{Type: audit.ActorUser, ID: "1", Name: "Ada Admin"}
	origin := audit.Origin{SourceIP: "127.0.0.1", RequestID: "seed"}
	caller := webhooks.Caller{Actor: actor, Origin: origin}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	newAPI := func(agency int64, ago int, name, env string) models.APICredential {
		t.Helper()
		f.at(Now.Add(-days(ago)))
		c, s, err := api.Create(ctx, actor, origin, agency, apiclients.CreateInput{Name: name, Environment: env, Nonce: apiclients.NewNonce()})
		must(err)
		f.Secrets = append(f.Secrets, s.Reveal())
		return c
	}
	used := func(st interface {
		TouchLastUsed(context.Context, map[int64]time.Time) error
	}, id int64, ago int) {
		t.Helper()
		must(st.TouchLastUsed(ctx, map[int64]time.Time{id: Now.Add(-days(ago))}))
	}
	keyLine := func(comment string) []byte {
		t.Helper()
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		must(err)
		sp, err := ssh.NewPublicKey(pub)
		must(err)
		line := ssh.MarshalAuthorizedKey(sp)
		return append(line[:len(line)-1], []byte(" "+comment+"\n")...)
	}
	newKey := func(agency models.Agency, acc models.SFTPAccount, ago int, comment string) models.SSHKey {
		t.Helper()
		f.at(Now.Add(-days(ago)))
		k, err := keys.Upload(ctx, actor, origin, agency.ID, acc.ID, keyLine(comment), nil)
		must(err)
		return k
	}
	newHook := func(agency int64, ago int, name, u, secret string) models.WebhookEndpoint {
		t.Helper()
		f.at(Now.Add(-days(ago)))
		e, _, err := hooks.Create(ctx, caller, agency, webhooks.EndpointInput{Environment: models.WebhookStaging, Name: name, URL: u,
			Events: []string{webhooks.EventCourtDateScheduled}}, webhooks.SecretChoice{Typed: secret})
		must(err)
		f.Secrets = append(f.Secrets, secret)
		return e
	}

	// API credentials.
	caseSync := newAPI(demo.ID, 100, "Case sync", "production")
	formula := newAPI(demo.ID, 80, "=SUM(1+1) feed", "staging")
	used(apiStore, formula.ID, 2)
	reports := newAPI(demo.ID, 120, "Reports feed", "production")
	f.at(Now.Add(-days(5)))
	_, rs, err := api.Regenerate(ctx, actor, origin, demo.ID, reports.ID, apiclients.RegenerateInput{ConfirmName: reports.Name, Version: reports.SecretVersion})
	must(err)
	f.Secrets = append(f.Secrets, rs.Reveal())
	used(apiStore, reports.ID, 1)
	oldExport := newAPI(demo.ID, 30, "Old export", "staging")
	f.at(Now.Add(-days(20)))
	_, err = api.Revoke(ctx, actor, origin, demo.ID, oldExport.ID)
	must(err)

	// SSH keys.
	f.at(Now.Add(-days(500)))
	acc, err := keys.CreateAccount(ctx, actor, origin, demo, models.EnvStg)
	must(err)
	oldKey := newKey(demo, acc, 400, "batch@court")
	used(keyStore, oldKey.ID, 100)
	newKeyRow := newKey(demo, acc, 10, "batch2@court")

	// Webhook secrets.
	caseHook := newHook(demo.ID, 170, "Case events", "https://hooks.demo-county.example/ecd?token=q-token-in-the-query", "demo-Webhook-Secret-0001")
	f.Secrets = append(f.Secrets, "q-token-in-the-query")
	oldHook := newHook(demo.ID, 10, "Old receiver", "https://old.demo-county.example/hook", "demo-Webhook-Secret-0002")
	f.at(Now.Add(-days(9)))
	must(hooks.SetEnabled(ctx, caller, demo.ID, oldHook.ID, false))

	// The IdP client secret expires in ten days.
	f.at(Now.Add(-days(3)))
	exp := Now.Add(days(10))
	must(f.Policies.SetIdPSecret(ctx, policy.IdPSecretChange{AgencyID: demo.ID, Actor: actor, Origin: origin,
		Provider: Provider.ID, ProviderLabel: Provider.Label, ProviderKind: Provider.Kind, ExpiresAt: &exp}))
	idp, err := f.Policies.IdPSecrets(ctx, demo.ID)
	must(err)

	// The other agency.
	otherAPI := newAPI(other.ID, 10, "Other county feed", "production")
	f.at(Now.Add(-days(50)))
	otherAcc, err := keys.CreateAccount(ctx, actor, origin, other, models.EnvProd)
	must(err)
	otherKey := newKey(other, otherAcc, 50, "other@county")
	otherHook := newHook(other.ID, 20, "Other county events", "https://hooks.other-county.example/in", "other-Webhook-Secret-003")
	f.OtherNames = []string{otherAPI.Name, otherAcc.Name, otherHook.Name}
	f.OtherRefs = []string{otherAPI.ClientID, otherKey.Fingerprint, "hooks.other-county.example"}
	f.at(Now)

	// Reload what the services changed after creation (fingerprints, names).
	stored := func(id int64) models.SSHKey {
		t.Helper()
		k, err := keyStore.Key(ctx, demo.ID, id)
		must(err)
		return k
	}
	oldKey, newKeyRow = stored(oldKey.ID), stored(newKeyRow.ID)
	keyName := func(k models.SSHKey) string { return acc.Name + " · " + k.KeyType + " (" + k.Comment + ")" }

	f.Want = []Want{
		{Type: policy.TypeAPICredential, ID: caseSync.ID, Name: "Case sync", Environment: "production", Status: "active", Reference: caseSync.ClientID,
			AgeState: policy.AgeOverdue, UseState: policy.UseNever, Compliant: "no", AgeDays: 100},
		{Type: policy.TypeAPICredential, ID: formula.ID, Name: "=SUM(1+1) feed", Environment: "staging", Status: "active", Reference: formula.ClientID,
			AgeState: policy.AgeDueSoon, UseState: policy.UseRecent, Compliant: "yes", AgeDays: 80},
		{Type: policy.TypeAPICredential, ID: reports.ID, Name: "Reports feed", Environment: "production", Status: "active", Reference: reports.ClientID,
			AgeState: policy.AgeOK, UseState: policy.UseRecent, Compliant: "yes", AgeDays: 5},
		{Type: policy.TypeAPICredential, ID: oldExport.ID, Name: "Old export", Environment: "staging", Status: "revoked", Reference: oldExport.ClientID,
			AgeState: "n/a", UseState: "n/a", Compliant: "n/a", AgeDays: 30},
		{Type: policy.TypeSSHKey, ID: oldKey.ID, Name: keyName(oldKey), Environment: acc.Environment, Status: "active", Reference: oldKey.Fingerprint,
			AgeState: policy.AgeOverdue, UseState: policy.UseUnused, Compliant: "no", AgeDays: 400},
		{Type: policy.TypeSSHKey, ID: newKeyRow.ID, Name: keyName(newKeyRow), Environment: acc.Environment, Status: "active", Reference: newKeyRow.Fingerprint,
			AgeState: policy.AgeOK, UseState: policy.UseRecent, Compliant: "yes", AgeDays: 10},
		{Type: policy.TypeWebhookSecret, ID: caseHook.ID, Name: "Case events", Environment: "staging", Status: "active", Reference: "https://hooks.demo-county.example/ecd",
			AgeState: policy.AgeDueSoon, UseState: policy.UseNever, Compliant: "no", AgeDays: 170},
		{Type: policy.TypeWebhookSecret, ID: oldHook.ID, Name: "Old receiver", Environment: "staging", Status: "disabled", Reference: "https://old.demo-county.example/hook",
			AgeState: "n/a", UseState: "n/a", Compliant: "n/a", AgeDays: 10},
		{Type: inventory.TypeIdPSecret, ID: idp[Provider.ID].ID, Name: "Okta client secret", Status: "active", Reference: Provider.ID,
			AgeState: policy.AgeDueSoon, UseState: "n/a", Compliant: "yes", AgeDays: 3},
	}
	return f
}

// Key names a wanted credential as "type:id".
func (w Want) Key() string { return w.Type + ":" + strconv.FormatInt(w.ID, 10) }
