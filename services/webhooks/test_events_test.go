package webhooks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/policy"
)

// TestFinding13_RefusedDeliveryNamesNoResolvedAddress: a host name that
// resolves to an address deliveries may not reach (here loopback, with no
// allowlist) is refused with the kind of address only. The address it
// resolved to is in neither the delivery log, the result, nor the audit
// record, so an administrator cannot learn what an internal name resolves to.
func TestFinding13_RefusedDeliveryNamesNoResolvedAddress(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		resolved := map[string]string{"hooks.county.test": "127.0.0.7", "v6.county.test": "::1"}
		svc := NewService(env.db, env.store, env.secrets, env.recorder, policy.DefaultSource{}, Options{
			EgressOptions: []EgressOption{WithConnect(env.guard.connect(EgressPolicy{})), WithResolver(func(_ context.Context, host string) ([]netip.Addr, error) {
				a, ok := resolved[host]
				if !ok {
					return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
				}
				return []netip.Addr{netip.MustParseAddr(a)}, nil
			})},
			Clock: env.clock.Now,
		})
		for host, addr := range resolved {
			ep := env.create(svc, host, "https://"+host+"/in", "address-test-secret-01")
			res, err := svc.SendTest(ctx, admin(), env.agency.ID, ep.ID, false)
			if err != nil {
				t.Fatalf("SendTest to %s: %v", host, err)
			}
			if !res.Attempt.Refused || res.Attempt.Error != "refused: a loopback address" {
				t.Errorf("delivery to %s: refused %v, error %q; want \"refused: a loopback address\"", host, res.Attempt.Refused, res.Attempt.Error)
			}
			logged, err := svc.Attempts(ctx, env.agency.ID, ep.ID, 10)
			if err != nil || len(logged) != 1 {
				t.Fatalf("delivery log of %s: %v, %v", host, logged, err)
			}
			if strings.Contains(logged[0].Error+logged[0].ResponseHead, addr) {
				t.Errorf("the delivery log of %s shows the address it resolved to: %q", host, logged[0].Error)
			}
			for _, ev := range env.auditActions(audit.ActionWebhookTestEvent) {
				if strings.Contains(ev.Reason+ev.Details, addr) {
					t.Errorf("the audit record of the test to %s shows the address it resolved to: %q %s", host, ev.Reason, ev.Details)
				}
			}
		}
		if seen := env.guard.addresses(); len(seen) != 0 {
			t.Fatalf("a refused destination was connected to: %v", seen)
		}
	})
}

// TestFinding13_TestEventsLimitedPerEndpoint: test events are limited per
// endpoint (a burst, then one more per interval); a limited request sends
// nothing, writes no log entry and says when to try again, and another
// endpoint of the agency is not affected.
func TestFinding13_TestEventsLimitedPerEndpoint(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		var received atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			received.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(srv.Close)
		svc := env.service(loopbackOnly())
		busy := env.create(svc, "busy", srv.URL+"/busy", "limit-test-secret-0001")
		quiet := env.create(svc, "quiet", srv.URL+"/quiet", "limit-test-secret-0002")

		var limited *TestLimitError
		sent := 0
		for range 20 {
			_, err := svc.SendTest(ctx, admin(), env.agency.ID, busy.ID, false)
			if errors.As(err, &limited) {
				break
			}
			if err != nil {
				t.Fatalf("SendTest: %v", err)
			}
			sent++
		}
		if limited == nil {
			t.Fatalf("%d test events in a row were all sent", sent)
		}
		if got := received.Load(); sent != TestEventBurst || got != int64(sent) {
			t.Fatalf("%d tests sent (%d received) before the limit, want %d", sent, got, TestEventBurst)
		}
		if !errors.Is(limited, ErrTestLimited) || limited.RetryAfter <= 0 || limited.RetryAfter > TestEventInterval {
			t.Fatalf("limit error %v, retry after %s", limited, limited.RetryAfter)
		}
		if logged, _ := svc.Attempts(ctx, env.agency.ID, busy.ID, 50); len(logged) != sent {
			t.Fatalf("%d log entries after %d sent tests and a limited one", len(logged), sent)
		}
		if _, err := svc.SendTest(ctx, admin(), env.agency.ID, quiet.ID, false); err != nil {
			t.Fatalf("another endpoint is limited too: %v", err)
		}
		// Another agency's endpoint id is still a missing one, limited or not.
		if _, err := svc.SendTest(ctx, admin(), env.other.ID, busy.ID, false); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("another agency's endpoint: %v, want ErrNotFound", err)
		}
		env.clock.Advance(TestEventInterval)
		if _, err := svc.SendTest(ctx, admin(), env.agency.ID, busy.ID, false); err != nil {
			t.Fatalf("one interval later a test is still refused: %v", err)
		}
		if _, err := svc.SendTest(ctx, admin(), env.agency.ID, busy.ID, false); !errors.As(err, &limited) {
			t.Fatalf("a second test in that interval: %v, want it limited", err)
		}
	})
}
