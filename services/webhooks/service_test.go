package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
)

func TestRotationWithOfficialReceivers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		svc := env.service(loopbackOnly())
		worker := svc.NewWorker(WorkerOptions{ID: "w1"})
		rv := newVerifyingReceiver(t)

		oldSecret := secretOf(t, "old-secret-0123456789")
		ep := env.create(svc, "case system", rv.srv.URL+"/hooks", oldSecret.Reveal())
		rv.hold("old", oldSecret)

		// Before any rotation: one signature, the old secret's.
		msg1, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateScheduled, []byte(`{"case":"CR-1","at":"2026-03-01T09:00:00Z"}`))
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		if n := drain(t, worker); n != 1 {
			t.Fatalf("worker attempted %d deliveries, want 1", n)
		}
		r := rv.last()
		if r.header.Get(HeaderID) != msg1 || r.verdict["old"] != nil {
			t.Fatalf("first delivery: id %q verdict %v", r.header.Get(HeaderID), r.verdict["old"])
		}
		var body struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || body.Type != EventCourtDateScheduled || string(body.Data) != `{"case":"CR-1","at":"2026-03-01T09:00:00Z"}` {
			t.Fatalf("body %s (%v)", r.body, err)
		}
		if d := deliveryStatus(t, db, msg1); d.Status != models.DeliverySucceeded || d.Attempts != 1 {
			t.Fatalf("delivery after success: %+v", d)
		}

		// Rotation with the default 24 h overlap.
		newSecret := secretOf(t, "new-secret-abcdefghijk")
		_, ep, err = svc.SetSecret(ctx, admin(), env.agency.ID, ep.ID, ep.SecretVersion, SecretChoice{Typed: newSecret.Reveal(), Overlap: DefaultOverlap})
		if err != nil {
			t.Fatalf("SetSecret: %v", err)
		}
		if ep.PreviousVersion != 1 || ep.SecretVersion != 2 || ep.OverlapEndsAt == nil || !ep.OverlapEndsAt.Equal(env.clock.Now().Add(DefaultOverlap)) {
			t.Fatalf("endpoint after rotation: %+v", ep)
		}
		rv.hold("new", newSecret)
		msg2, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateChanged, []byte(`{"case":"CR-1"}`))
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		drain(t, worker)
		r = rv.last()
		if r.header.Get(HeaderID) != msg2 {
			t.Fatalf("second delivery id %q, want %q", r.header.Get(HeaderID), msg2)
		}
		if r.verdict["old"] != nil || r.verdict["new"] != nil {
			t.Fatalf("during the overlap: old-only receiver %v, new-only receiver %v; both must accept", r.verdict["old"], r.verdict["new"])
		}
		sigs := strings.Split(r.header.Get(HeaderSignature), " ")
		if len(sigs) != 2 || sigs[0] != fmtSig([]Secret{newSecret}, r) || sigs[1] != fmtSig([]Secret{oldSecret}, r) {
			t.Fatalf("signature header %q: want the new secret's signature first, then the old one's", r.header.Get(HeaderSignature))
		}

		// The window ends: the next delivery carries the new signature only,
		// even before the sweep runs.
		env.clock.Advance(DefaultOverlap + time.Second)
		msg3, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateChanged, []byte(`{"case":"CR-2"}`))
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		drain(t, worker)
		r = rv.last()
		if r.header.Get(HeaderID) != msg3 {
			t.Fatalf("third delivery id %q", r.header.Get(HeaderID))
		}
		if r.verdict["new"] != nil {
			t.Fatalf("after the window the new-only receiver refused: %v", r.verdict["new"])
		}
		if !errors.Is(r.verdict["old"], standardwebhooks.ErrNoMatchingSignature) {
			t.Fatalf("after the window the old-only receiver = %v, want no matching signature", r.verdict["old"])
		}
		if len(strings.Split(r.header.Get(HeaderSignature), " ")) != 1 {
			t.Fatalf("signature header after the window %q, want one signature", r.header.Get(HeaderSignature))
		}

		// The sweep destroys the old sealed secret and audits the end.
		if _, err := env.secrets.Get(ctx, SecretRef(env.agency.ID, ep.ID, 1)); err != nil {
			t.Fatalf("old secret before the sweep: %v", err)
		}
		n, err := svc.EndExpiredRotations(ctx)
		if err != nil || n != 1 {
			t.Fatalf("EndExpiredRotations = %d, %v; want 1", n, err)
		}
		if _, err := env.secrets.Get(ctx, SecretRef(env.agency.ID, ep.ID, 1)); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("old sealed secret after the sweep: %v, want not found", err)
		}
		var rows int64
		if err := db.Gorm.Model(&models.SealedSecret{}).Where("record_type = ? AND record_id = ?", SecretRecordType, SecretRef(env.agency.ID, ep.ID, 1).RecordID).Count(&rows).Error; err != nil || rows != 0 {
			t.Fatalf("old sealed secret rows = %d (%v), want 0", rows, err)
		}
		if _, err := env.secrets.Get(ctx, SecretRef(env.agency.ID, ep.ID, 2)); err != nil {
			t.Fatalf("new secret after the sweep: %v", err)
		}
		got, err := svc.Endpoint(ctx, env.agency.ID, ep.ID)
		if err != nil || got.PreviousVersion != 0 || got.OverlapEndsAt != nil {
			t.Fatalf("endpoint after the sweep: %+v (%v)", got, err)
		}
		ended := env.auditActions(audit.ActionWebhookRotationEnded)
		if len(ended) != 1 || ended[0].ActorType != audit.ActorSystem || ended[0].Reason != EndReasonExpired || ended[0].AgencyID != env.agency.ID {
			t.Fatalf("rotation_ended records: %+v", ended)
		}
		if again, err := svc.EndExpiredRotations(ctx); err != nil || again != 0 {
			t.Fatalf("second sweep = %d, %v; want 0", again, err)
		}
		if rot := env.auditActions(audit.ActionWebhookSecretRotate); len(rot) != 1 || !strings.Contains(rot[0].Details, `"overlap_hours":"24"`) {
			t.Fatalf("secret_rotate records: %+v", rot)
		}
		env.assertNoSecretInAudit(oldSecret, newSecret)
		if rep, err := audit.NewVerifier(models.NewAuditStore(db)).Verify(ctx, env.agency.ID); err != nil || !rep.Intact {
			t.Fatalf("audit chain: %+v, %v", rep, err)
		}
	})
}

func TestDeliveryRefusals(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		// Endpoints stored while the operator's allowlist allowed them, then
		// delivered under a stricter policy: the delivery checks again.
		permissive := env.service(allowEverything())
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://10.0.0.1/steal", http.StatusFound)
		}))
		defer redirector.Close()
		onlyV4Loopback := EgressPolicy{AllowedCIDRs: loopbackOnly().AllowedCIDRs[:1]}
		production := EgressPolicy{AllowedCIDRs: onlyV4Loopback.AllowedCIDRs, RequireHTTPS: true}

		tests := []struct {
			name    string
			policy  EgressPolicy
			url     string
			want    string
			refused bool
			status  int
		}{
			{"loopback without allowlist", EgressPolicy{}, "http://127.0.0.1:9/hook", "refused: a loopback address", true, 0},
			{"IPv6 loopback", onlyV4Loopback, "http://[::1]:9/hook", "refused: a loopback address", true, 0},
			{"private", onlyV4Loopback, "https://10.0.0.1/hook", "refused: a private address", true, 0},
			{"cloud metadata", onlyV4Loopback, "http://169.254.169.254/latest/meta-data/", "refused: the cloud metadata address", true, 0},
			{"name resolving to private", onlyV4Loopback, "https://internal.test/hook", "refused: a private address", true, 0},
			{"name resolving to mapped metadata", onlyV4Loopback, "https://metadata.test/x", "refused: the cloud metadata address", true, 0},
			{"http in production", production, "http://127.0.0.1:9/hook", "The URL must use https.", true, 0},
			{"redirect to a private address", onlyV4Loopback, redirector.URL + "/hook", "the receiver answered 302 Found; redirects are not followed", false, http.StatusFound},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env.guard.reset()
				strict := env.service(tt.policy)
				ep := env.create(permissive, "endpoint "+string(rune('a'+i)), tt.url, "refusal-secret-000001")

				// A test event: one attempt, the outcome in the log.
				res, err := strict.SendTest(ctx, admin(), env.agency.ID, ep.ID, false)
				if err != nil {
					t.Fatalf("SendTest: %v", err)
				}
				a := res.Attempt
				if a.Error != tt.want || a.Refused != tt.refused || a.OK || a.StatusCode != tt.status {
					t.Fatalf("test attempt = error %q refused %v ok %v status %d; want %q refused %v status %d", a.Error, a.Refused, a.OK, a.StatusCode, tt.want, tt.refused, tt.status)
				}

				// A real event: refused at once and not retried; a redirect is a
				// failure retried later, never followed.
				msg, err := strict.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateScheduled, []byte(`{"case":"CR-9"}`))
				if err != nil {
					t.Fatalf("Deliver: %v", err)
				}
				if n := drain(t, strict.NewWorker(WorkerOptions{ID: "strict"})); n != 1 {
					t.Fatalf("worker attempted %d, want 1", n)
				}
				d := deliveryStatus(t, db, msg)
				wantStatus := models.DeliveryFailed
				if !tt.refused {
					wantStatus = models.DeliveryPending
				}
				if d.Status != wantStatus || d.Attempts != 1 || d.LastError != tt.want {
					t.Fatalf("delivery after the attempt: status %s attempts %d error %q; want %s, 1, %q", d.Status, d.Attempts, d.LastError, wantStatus, tt.want)
				}

				log, err := strict.Attempts(ctx, env.agency.ID, ep.ID, 10)
				if err != nil {
					t.Fatalf("Attempts: %v", err)
				}
				if len(log) != 2 || log[0].Kind != models.AttemptEvent || log[1].Kind != models.AttemptTest || log[0].Error != tt.want || log[1].Error != tt.want {
					t.Fatalf("delivery log: %+v", log)
				}
				for _, addr := range env.guard.addresses() {
					if tt.refused || addr != strings.TrimPrefix(redirector.URL, "http://") {
						t.Fatalf("the dialer was reached for %s", addr)
					}
				}
				if !tt.refused && len(env.guard.addresses()) == 0 {
					t.Fatal("the redirect case never reached the receiver")
				}
			})
		}
		tests2 := env.auditActions(audit.ActionWebhookTestEvent)
		if len(tests2) != len(tests) {
			t.Fatalf("%d test_event records, want %d", len(tests2), len(tests))
		}
		for _, ev := range tests2 {
			if ev.Outcome != audit.OutcomeFailure || ev.Reason == "" {
				t.Fatalf("test_event record %+v, want a failure with its reason", ev)
			}
		}
	})
}

func TestBadSecretsChangeNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		svc := env.service(loopbackOnly())
		good := secretOf(t, "good-secret-0123456789")
		ep := env.create(svc, "receiver", "https://hooks.example.gov/in", good.Reveal())

		tests := []struct {
			name, secret, want string
		}{
			{"25 characters", strings.Repeat("a", 25), "The secret is too long; use at most 24 characters, the platform's limit."},
			{"15 characters", strings.Repeat("b", 15), "The secret is too short; use at least 16 characters."},
			{"spaces", "with some spaces 1234", "The secret contains a space or other whitespace; spaces are not allowed."},
			{"non-ASCII", "sécret-non-ascii-1234", "The secret contains a non-ASCII character; use printable ASCII characters only."},
			{"empty", "", "Enter a secret of 16 to 24 characters."},
		}
		seen := map[string]bool{}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				auditBefore, sealedBefore := len(env.auditEvents()), env.sealedCount()
				_, _, err := svc.SetSecret(ctx, admin(), env.agency.ID, ep.ID, ep.SecretVersion, SecretChoice{Typed: tt.secret, Overlap: DefaultOverlap})
				var ie *InputError
				if !errors.As(err, &ie) || ie.Fields["secret"] != tt.want || len(ie.Fields) != 1 {
					t.Fatalf("SetSecret = %v, want the secret refused with %q", err, tt.want)
				}
				if seen[ie.Fields["secret"]] {
					t.Fatalf("message %q used for two refusals", ie.Fields["secret"])
				}
				seen[ie.Fields["secret"]] = true
				if tt.secret != "" && strings.Contains(ie.Fields["secret"], tt.secret) {
					t.Fatal("the refusal repeats the secret")
				}
				got, err := svc.Endpoint(ctx, env.agency.ID, ep.ID)
				if err != nil || got.SecretVersion != ep.SecretVersion || got.PreviousVersion != 0 || !got.UpdatedAt.Equal(ep.UpdatedAt) {
					t.Fatalf("endpoint changed: %+v (%v)", got, err)
				}
				if len(env.auditEvents()) != auditBefore || env.sealedCount() != sealedBefore {
					t.Fatal("a refused secret wrote an audit record or a sealed secret")
				}
				pt, err := env.secrets.Get(ctx, SecretRef(env.agency.ID, ep.ID, ep.SecretVersion))
				if err != nil || string(pt) != good.Reveal() {
					t.Fatalf("current secret after a refusal: %v", err)
				}

				// The same refusal on create writes no endpoint.
				var before int64
				db.Gorm.Model(&models.WebhookEndpoint{}).Count(&before)
				_, _, err = svc.Create(ctx, admin(), env.agency.ID, EndpointInput{Environment: models.WebhookStaging, Name: "new " + tt.name, URL: "https://hooks.example.gov/x", Events: []string{EventReminderSent}}, SecretChoice{Typed: tt.secret})
				if !errors.As(err, &ie) || ie.Fields["secret"] != tt.want {
					t.Fatalf("Create = %v, want the secret refused", err)
				}
				var after int64
				db.Gorm.Model(&models.WebhookEndpoint{}).Count(&after)
				if after != before {
					t.Fatal("a refused create wrote an endpoint")
				}
			})
		}
		// The overlap is checked as well, in the same answer.
		_, _, err := svc.SetSecret(ctx, admin(), env.agency.ID, ep.ID, ep.SecretVersion, SecretChoice{Typed: "x", Overlap: 73 * time.Hour})
		var ie *InputError
		if !errors.As(err, &ie) || ie.Fields["overlap"] == "" || ie.Fields["secret"] == "" {
			t.Fatalf("SetSecret with a bad secret and a 73 h overlap = %v", err)
		}
	})
}

func TestNewSecretOnlyTestAndEarlyEnd(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		svc := env.service(loopbackOnly())
		rv := newVerifyingReceiver(t)
		ep, first, err := svc.Create(ctx, admin(), env.agency.ID, EndpointInput{Environment: models.WebhookStaging, Name: "receiver", URL: rv.srv.URL, Events: []string{EventReminderFailed}}, SecretChoice{Generate: true})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if len(first.Reveal()) != GeneratedSecretLen {
			t.Fatalf("generated secret of %d characters", len(first.Reveal()))
		}
		if _, err := svc.SendTest(ctx, admin(), env.agency.ID, ep.ID, true); !errors.Is(err, ErrNoRotation) {
			t.Fatalf("new-secret test without a window = %v, want ErrNoRotation", err)
		}
		if err := svc.EndRotation(ctx, admin(), env.agency.ID, ep.ID); !errors.Is(err, ErrNoRotation) {
			t.Fatalf("EndRotation without a window = %v, want ErrNoRotation", err)
		}
		second, ep, err := svc.SetSecret(ctx, admin(), env.agency.ID, ep.ID, ep.SecretVersion, SecretChoice{Generate: true, Overlap: 72 * time.Hour})
		if err != nil {
			t.Fatalf("SetSecret: %v", err)
		}
		// A receiver still on the first secret refuses a new-only test.
		rv.hold("old", first)
		rv.decideBy("old")
		res, err := svc.SendTest(ctx, admin(), env.agency.ID, ep.ID, true)
		if err != nil || res.Verified || res.Attempt.StatusCode != http.StatusUnauthorized || res.Attempt.ResponseHead != `{"error":"invalid signature"}` {
			t.Fatalf("new-only test against an old receiver = %+v, %v", res, err)
		}
		if got, _ := svc.Endpoint(ctx, env.agency.ID, ep.ID); got.NewSecretVerifiedAt != nil {
			t.Fatal("verified without a 2xx")
		}
		if len(strings.Split(rv.last().header.Get(HeaderSignature), " ")) != 1 {
			t.Fatalf("new-only test carried %q", rv.last().header.Get(HeaderSignature))
		}
		// Once the receiver holds the new secret, the test verifies it.
		rv.hold("new", second)
		rv.decideBy("new")
		env.clock.Advance(time.Hour)
		res, err = svc.SendTest(ctx, admin(), env.agency.ID, ep.ID, true)
		if err != nil || !res.Verified || res.Attempt.StatusCode != http.StatusNoContent || res.Attempt.SignedWith != "v2" || res.Attempt.Kind != models.AttemptTestNewSecret {
			t.Fatalf("new-only test = %+v, %v", res, err)
		}
		got, _ := svc.Endpoint(ctx, env.agency.ID, ep.ID)
		if got.NewSecretVerifiedAt == nil || !got.NewSecretVerifiedAt.Equal(env.clock.Now()) {
			t.Fatalf("verified at %v, want %v", got.NewSecretVerifiedAt, env.clock.Now())
		}
		if !errors.Is(rv.last().verdict["old"], standardwebhooks.ErrNoMatchingSignature) {
			t.Fatal("the new-only test was signed with the old secret too")
		}
		// An ordinary test during the window carries both.
		res, err = svc.SendTest(ctx, admin(), env.agency.ID, ep.ID, false)
		if err != nil || res.Attempt.SignedWith != "v2+v1" || rv.last().verdict["old"] != nil || rv.last().verdict["new"] != nil {
			t.Fatalf("test during the window = %+v, %v", res.Attempt, err)
		}

		// Ending the window early destroys the old secret and records it.
		if err := svc.EndRotation(ctx, admin(), env.agency.ID, ep.ID); err != nil {
			t.Fatalf("EndRotation: %v", err)
		}
		if _, err := env.secrets.Get(ctx, SecretRef(env.agency.ID, ep.ID, 1)); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("old secret after EndRotation: %v", err)
		}
		ended := env.auditActions(audit.ActionWebhookRotationEnded)
		if len(ended) != 1 || ended[0].Reason != EndReasonByAdmin || ended[0].ActorName != "Ada Admin" || !strings.Contains(ended[0].Details, "receiver_verified_at") {
			t.Fatalf("rotation_ended: %+v", ended)
		}
		env.assertNoSecretInAudit(first, second)
	})
}

func TestRotationCases(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		svc := env.service(loopbackOnly())
		ep := env.create(svc, "receiver", "https://hooks.example.gov/in", "first-secret-00000001")
		versions := func() (int64, int64) {
			got, err := svc.Endpoint(ctx, env.agency.ID, ep.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.SecretVersion, got.PreviousVersion
		}
		current := func() int64 { c, _ := versions(); return c }
		sealed := func(v int64) bool {
			_, err := env.secrets.Get(ctx, SecretRef(env.agency.ID, ep.ID, v))
			return err == nil
		}
		// Rotation with no overlap: the old secret goes at once.
		if _, _, err := svc.SetSecret(ctx, admin(), env.agency.ID, ep.ID, current(), SecretChoice{Generate: true, Overlap: 0}); err != nil {
			t.Fatal(err)
		}
		if c, p := versions(); c != 2 || p != 0 || sealed(1) || !sealed(2) {
			t.Fatalf("after a 0 h rotation: current %d previous %d, v1 kept %v", c, p, sealed(1))
		}
		// A window opens; a second secret inside it replaces the pending one and
		// keeps the old.
		if _, _, err := svc.SetSecret(ctx, admin(), env.agency.ID, ep.ID, current(), SecretChoice{Generate: true, Overlap: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.SetSecret(ctx, admin(), env.agency.ID, ep.ID, current(), SecretChoice{Generate: true, Overlap: 2 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		if c, p := versions(); c != 4 || p != 2 || sealed(3) || !sealed(2) || !sealed(4) {
			t.Fatalf("after replacing inside a window: current %d previous %d", c, p)
		}
		got, _ := svc.Endpoint(ctx, env.agency.ID, ep.ID)
		if !got.OverlapEndsAt.Equal(env.clock.Now().Add(2 * time.Hour)) {
			t.Fatalf("window end %v", got.OverlapEndsAt)
		}
		// A window that ended without a sweep ends when the next secret is set.
		env.clock.Advance(3 * time.Hour)
		if _, _, err := svc.SetSecret(ctx, admin(), env.agency.ID, ep.ID, current(), SecretChoice{Generate: true, Overlap: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if c, p := versions(); c != 5 || p != 4 || sealed(2) {
			t.Fatalf("after rotating past an unswept window: current %d previous %d, v2 kept %v", c, p, sealed(2))
		}
		var reasons []string
		for _, ev := range env.auditActions(audit.ActionWebhookRotationEnded) {
			reasons = append(reasons, ev.Reason)
		}
		if strings.Join(reasons, ",") != EndReasonNoOverlap+","+EndReasonExpired {
			t.Fatalf("rotation_ended reasons %v", reasons)
		}
		if n := len(env.auditActions(audit.ActionWebhookSecretRotate)); n != 4 {
			t.Fatalf("%d secret_rotate records, want 4", n)
		}
		if n := len(env.auditActions(audit.ActionWebhookCreate)); n != 1 {
			t.Fatalf("%d create records", n)
		}
	})
}

func TestTenancy(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		svc := env.service(loopbackOnly())
		ep := env.create(svc, "receiver", "https://hooks.example.gov/in", "tenant-secret-0000001")
		other := env.other.ID
		checks := map[string]error{}
		_, checks["Endpoint"] = svc.Endpoint(ctx, other, ep.ID)
		_, checks["Update"] = svc.Update(ctx, admin(), other, ep.ID, EndpointInput{Environment: "staging", Name: "x", URL: "https://a.example.gov", Events: []string{EventReminderSent}})
		_, _, checks["SetSecret"] = svc.SetSecret(ctx, admin(), other, ep.ID, ep.SecretVersion, SecretChoice{Generate: true, Overlap: time.Hour})
		_, _, checks["Reveal"] = svc.Reveal(ctx, admin(), other, ep.ID)
		_, checks["SendTest"] = svc.SendTest(ctx, admin(), other, ep.ID, false)
		checks["SetEnabled"] = svc.SetEnabled(ctx, admin(), other, ep.ID, false)
		checks["EndRotation"] = svc.EndRotation(ctx, admin(), other, ep.ID)
		checks["Delete"] = svc.Delete(ctx, admin(), other, ep.ID)
		_, checks["Deliver"] = svc.Deliver(ctx, other, ep.ID, EventCourtDateScheduled, []byte(`{}`))
		_, checks["Attempt"] = svc.Attempt(ctx, other, ep.ID, 1)
		for name, err := range checks {
			if !errors.Is(err, models.ErrNotFound) {
				t.Errorf("%s with another agency = %v, want not found", name, err)
			}
		}
		if got, err := svc.Endpoint(ctx, env.agency.ID, ep.ID); err != nil || !got.Enabled || got.SecretVersion != 1 {
			t.Fatalf("endpoint changed by another agency: %+v %v", got, err)
		}
		if n := len(env.auditEvents()); n != 1 {
			t.Fatalf("%d audit records, want only the create", n)
		}
		// The secret is bound to its agency and endpoint: a blob copied to
		// another record does not open.
		var blob models.SealedSecret
		if err := db.Gorm.Where("record_type = ? AND record_id = ?", SecretRecordType, SecretRef(env.agency.ID, ep.ID, 1).RecordID).Take(&blob).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Gorm.Create(&models.SealedSecret{AgencyID: other, RecordType: SecretRecordType, RecordID: "999:1", Provider: blob.Provider, KeyID: blob.KeyID, Blob: blob.Blob, CreatedAt: blob.CreatedAt, UpdatedAt: blob.UpdatedAt}).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := env.secrets.Get(ctx, SecretRef(other, 999, 1)); err == nil {
			t.Fatal("a sealed webhook secret opened under another agency and endpoint")
		}
	})
}

func TestEndpointLifecycle(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		svc := env.service(EgressPolicy{RequireHTTPS: true})
		in := EndpointInput{Environment: models.WebhookProduction, Name: "Case system", URL: "https://hooks.example.gov/in?token=abc", Events: []string{EventContactOptedOut, EventCourtDateScheduled, EventContactOptedOut}}
		ep, sec, err := svc.Create(ctx, admin(), env.agency.ID, in, SecretChoice{Generate: true})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if ep.EventTypes != EventCourtDateScheduled+" "+EventContactOptedOut {
			t.Fatalf("events stored as %q", ep.EventTypes)
		}
		_, _, err = svc.Create(ctx, admin(), env.agency.ID, in, SecretChoice{Generate: true})
		var ie *InputError
		if !errors.As(err, &ie) || ie.Fields["name"] == "" {
			t.Fatalf("duplicate name = %v", err)
		}
		bad := []struct {
			in    EndpointInput
			field string
			want  string
		}{
			{EndpointInput{Environment: "test", Name: "a", URL: "https://a.example.gov", Events: []string{EventReminderSent}}, "environment", "Choose staging or production."},
			{EndpointInput{Environment: "staging", Name: " ", URL: "https://a.example.gov", Events: []string{EventReminderSent}}, "name", "Enter a name for the endpoint."},
			{EndpointInput{Environment: "staging", Name: "a", URL: "http://a.example.gov", Events: []string{EventReminderSent}}, "url", "The URL must use https."},
			{EndpointInput{Environment: "staging", Name: "a", URL: "https://10.0.0.1/x", Events: []string{EventReminderSent}}, "url", "Deliveries to this URL are refused: it points to a private address."},
			{EndpointInput{Environment: "staging", Name: "a", URL: "https://a.example.gov", Events: nil}, "events", "Choose at least one event type."},
			{EndpointInput{Environment: "staging", Name: "a", URL: "https://a.example.gov", Events: []string{"court_date.eaten"}}, "events", "Unknown event type: court_date.eaten."},
		}
		for _, b := range bad {
			_, err := svc.Update(ctx, admin(), env.agency.ID, ep.ID, b.in)
			if !errors.As(err, &ie) || ie.Fields[b.field] != b.want {
				t.Errorf("Update(%+v) = %v, want %s: %q", b.in, err, b.field, b.want)
			}
		}
		upd, err := svc.Update(ctx, admin(), env.agency.ID, ep.ID, EndpointInput{Environment: models.WebhookStaging, Name: "Case system", URL: "https://hooks2.example.gov/in", Description: "moved", Events: []string{EventReminderSent}})
		if err != nil || upd.URL != "https://hooks2.example.gov/in" || upd.Environment != models.WebhookStaging || upd.EventTypes != EventReminderSent {
			t.Fatalf("Update = %+v, %v", upd, err)
		}
		if _, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateScheduled, []byte(`{}`)); !errors.Is(err, ErrNotSubscribed) {
			t.Fatalf("Deliver unsubscribed = %v", err)
		}
		if _, err := svc.Deliver(ctx, env.agency.ID, ep.ID, "court_date.eaten", []byte(`{}`)); !errors.Is(err, ErrUnknownEvent) {
			t.Fatalf("Deliver unknown = %v", err)
		}
		if _, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventReminderSent, []byte(`{not json`)); !errors.Is(err, ErrBadPayload) {
			t.Fatalf("Deliver bad payload = %v", err)
		}
		if err := svc.SetEnabled(ctx, admin(), env.agency.ID, ep.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventReminderSent, []byte(`{}`)); !errors.Is(err, ErrDisabled) {
			t.Fatalf("Deliver disabled = %v", err)
		}
		if err := svc.SetEnabled(ctx, admin(), env.agency.ID, ep.ID, true); err != nil {
			t.Fatal(err)
		}
		ids, err := svc.Publish(ctx, env.agency.ID, models.WebhookStaging, EventReminderSent, []byte(`{"n":1}`))
		if err != nil || len(ids) != 1 {
			t.Fatalf("Publish = %v, %v", ids, err)
		}
		revealed, _, err := svc.Reveal(ctx, admin(), env.agency.ID, ep.ID)
		if err != nil || !revealed.Equal(sec) {
			t.Fatalf("Reveal: %v", err)
		}
		if err := svc.Delete(ctx, admin(), env.agency.ID, ep.ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := svc.Endpoint(ctx, env.agency.ID, ep.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if env.sealedCount() != 0 {
			t.Fatal("sealed secrets left after delete")
		}
		var queued int64
		db.Gorm.Model(&models.WebhookDelivery{}).Count(&queued)
		if queued != 0 {
			t.Fatal("deliveries left after delete")
		}
		var actions []string
		for _, ev := range env.auditEvents() {
			actions = append(actions, ev.Action)
			if strings.Contains(ev.Details, "token=abc") {
				t.Fatalf("audit %s carries the URL's query", ev.Action)
			}
		}
		want := []string{audit.ActionWebhookCreate, audit.ActionWebhookUpdate, audit.ActionWebhookDisable, audit.ActionWebhookEnable, audit.ActionWebhookSecretReveal, audit.ActionWebhookDelete}
		if strings.Join(actions, " ") != strings.Join(want, " ") {
			t.Fatalf("audit actions %v, want %v", actions, want)
		}
		env.assertNoSecretInAudit(sec)
	})
}

func TestRetriesOnSchedule(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		svc := env.service(loopbackOnly())
		var mu sync.Mutex
		answers := []int{http.StatusServiceUnavailable, http.StatusInternalServerError, http.StatusOK}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			code := answers[0]
			answers = answers[1:]
			mu.Unlock()
			w.WriteHeader(code)
		}))
		defer srv.Close()
		ep := env.create(svc, "flaky", srv.URL, "retry-secret-00000001")
		w := svc.NewWorker(WorkerOptions{ID: "w"})
		msg, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateScheduled, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			advance time.Duration
			want    int
			status  string
		}{
			{0, 1, models.DeliveryPending},
			{59 * time.Second, 0, models.DeliveryPending},
			{time.Second, 1, models.DeliveryPending},
			{3*time.Minute - time.Second, 0, models.DeliveryPending},
			{time.Second, 1, models.DeliverySucceeded},
		}
		for i, st := range steps {
			env.clock.Advance(st.advance)
			if n := drain(t, w); n != st.want {
				t.Fatalf("step %d: %d attempts, want %d", i, n, st.want)
			}
			if d := deliveryStatus(t, db, msg); d.Status != st.status {
				t.Fatalf("step %d: status %s, want %s", i, d.Status, st.status)
			}
		}
		log, _ := svc.Attempts(ctx, env.agency.ID, ep.ID, 10)
		if len(log) != 3 || log[0].StatusCode != 200 || log[1].StatusCode != 500 || log[2].StatusCode != 503 || log[2].Attempt != 1 || log[0].Attempt != 3 {
			t.Fatalf("log %+v", log)
		}
		for _, a := range log {
			if a.MsgID != msg {
				t.Fatalf("attempt with message id %s, want %s on every retry", a.MsgID, msg)
			}
		}
		// A delivery that keeps failing stops after MaxAttempts.
		answers = []int{500, 500, 500}
		msg2, _ := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateScheduled, []byte(`{}`))
		for range 3 {
			drain(t, w)
			env.clock.Advance(time.Hour)
		}
		if d := deliveryStatus(t, db, msg2); d.Status != models.DeliveryFailed || d.Attempts != 3 {
			t.Fatalf("exhausted delivery: %+v", d)
		}
	})
}

func TestTwoWorkersDeliverEachAttemptOnce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		var mu sync.Mutex
		seen := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.Header.Get(HeaderID)]++
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		// Two replicas: two services and two workers on one database.
		a, b := env.service(loopbackOnly()), env.service(loopbackOnly())
		ep := env.create(a, "busy", srv.URL, "replica-secret-000001")
		const total = 60
		want := map[string]bool{}
		for range total {
			id, err := a.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateChanged, []byte(`{"k":"v"}`))
			if err != nil {
				t.Fatal(err)
			}
			want[id] = true
		}
		wa := a.NewWorker(WorkerOptions{ID: "replica-a", Batch: 10, Concurrency: 4})
		wb := b.NewWorker(WorkerOptions{ID: "replica-b", Batch: 10, Concurrency: 4})
		var wg sync.WaitGroup
		counts := make([]int, 2)
		for i, w := range []*Worker{wa, wb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 200 {
					n, err := w.RunOnce(ctx)
					if err != nil {
						t.Errorf("RunOnce: %v", err)
						return
					}
					counts[i] += n
					if n == 0 {
						var pending int64
						db.Gorm.Model(&models.WebhookDelivery{}).Where("status <> ?", models.DeliverySucceeded).Count(&pending)
						if pending == 0 {
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if counts[0]+counts[1] != total {
			t.Fatalf("workers attempted %d + %d, want %d in all", counts[0], counts[1], total)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != total {
			t.Fatalf("receiver saw %d distinct messages, want %d", len(seen), total)
		}
		for id, n := range seen {
			if !want[id] || n != 1 {
				t.Fatalf("message %s received %d times", id, n)
			}
		}
		var attempts int64
		db.Gorm.Model(&models.WebhookAttempt{}).Count(&attempts)
		if attempts != total {
			t.Fatalf("%d log entries, want %d", attempts, total)
		}
		t.Logf("replica a attempted %d, replica b %d", counts[0], counts[1])
	})
}

func TestExpiredClaimIsRetried(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		svc := env.service(loopbackOnly())
		rv := newVerifyingReceiver(t)
		ep := env.create(svc, "r", rv.srv.URL, "claim-secret-00000001")
		msg, _ := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateScheduled, []byte(`{}`))
		d := deliveryStatus(t, db, msg)
		// A worker that claimed the delivery and stopped.
		ok, err := env.store.ClaimDelivery(ctx, d.ID, "gone:1", env.clock.Now().Add(2*time.Minute), env.clock.Now())
		if err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		if again, _ := env.store.ClaimDelivery(ctx, d.ID, "other:1", env.clock.Now().Add(2*time.Minute), env.clock.Now()); again {
			t.Fatal("a claimed delivery was claimed twice")
		}
		w := svc.NewWorker(WorkerOptions{ID: "w"})
		if n := drain(t, w); n != 0 {
			t.Fatalf("a claimed delivery was attempted while its lease held")
		}
		env.clock.Advance(2*time.Minute + time.Second)
		if n := drain(t, w); n != 1 {
			t.Fatalf("after the lease: %d attempts, want 1", n)
		}
		if got := deliveryStatus(t, db, msg); got.Status != models.DeliverySucceeded {
			t.Fatalf("status %s", got.Status)
		}
	})
}
