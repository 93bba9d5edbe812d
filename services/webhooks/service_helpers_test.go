package webhooks

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"keyconsole/kms"
	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/policy"
	"keyconsole/services/secrets"
)

// testClock is the injectable clock of the service tests.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Now().UTC().Truncate(time.Second)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// egressGuard is the connect step of the services under test: a real
// net.Dialer whose Control hook first applies the egress policy (as the
// product's dialer does) and then acts as a recorder. Control runs after the
// socket is made and before connect(2), so an address it refuses never sees
// a packet. Only loopback addresses are let through; reaching the recorder
// with any other address fails the test.
type egressGuard struct {
	t       testing.TB
	mu      sync.Mutex
	reached []string
}

func newEgressGuard(t testing.TB) *egressGuard { return &egressGuard{t: t} }

func (g *egressGuard) connect(p EgressPolicy) ConnectFunc {
	policyCheck := ControlFunc(p)
	d := &net.Dialer{Timeout: 2 * time.Second, Control: func(network, address string, c syscall.RawConn) error {
		if err := policyCheck(network, address, c); err != nil {
			return err
		}
		g.mu.Lock()
		g.reached = append(g.reached, address)
		g.mu.Unlock()
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			g.t.Errorf("egress guard: a connection to %s was about to be made; only loopback may be reached", address)
			return errors.New("egress guard: refused to connect " + address)
		}
		return nil
	}}
	return d.DialContext
}

func (g *egressGuard) addresses() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.reached...)
}

func (g *egressGuard) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reached = nil
}

// testDNS answers the host names the tests use; real DNS is never asked.
func testDNS(t testing.TB) ResolveFunc {
	answers := map[string][]string{"internal.test": {"10.1.2.3"}, "metadata.test": {"::ffff:169.254.169.254"}}
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		list, ok := answers[host]
		if !ok {
			t.Errorf("unexpected resolution of %q", host)
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		out := make([]netip.Addr, 0, len(list))
		for _, a := range list {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

func loopbackOnly() EgressPolicy {
	return EgressPolicy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
}

func allowEverything() EgressPolicy {
	return EgressPolicy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}}
}

// svcEnv is one database with two agencies, real envelope encryption under a
// local master key, a real audit recorder and an injectable clock.
type svcEnv struct {
	t        testing.TB
	db       *models.DB
	clock    *testClock
	agency   models.Agency
	other    models.Agency
	envelope *kms.Envelope
	secrets  *secrets.Service
	recorder *audit.Recorder
	store    *models.WebhookStore
	guard    *egressGuard
}

func newSvcEnv(t testing.TB, db *models.DB) *svcEnv {
	t.Helper()
	key := make([]byte, local.MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	kr, err := local.New(key, "")
	if err != nil {
		t.Fatalf("local keyring: %v", err)
	}
	return newSvcEnvWith(t, db, kr)
}

// newSvcEnvWith is newSvcEnv over a given keyring.
func newSvcEnvWith(t testing.TB, db *models.DB, kr kms.Keyring) *svcEnv {
	t.Helper()
	ctx := context.Background()
	clock := newTestClock()
	agencies := models.NewAgencyStore(db)
	mk := func(slug string) models.Agency {
		a := models.Agency{Slug: slug, Name: slug, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
		if err := agencies.Create(ctx, &a); err != nil {
			t.Fatalf("create agency: %v", err)
		}
		return a
	}
	env := kms.NewEnvelope(kr, kms.Options{})
	rec := audit.NewRecorder(db, models.NewAuditStore(db), clock.Now)
	return &svcEnv{
		t: t, db: db, clock: clock, agency: mk("county-a"), other: mk("county-b"),
		envelope: env, secrets: secrets.NewService(db, env, models.NewSealedStore(db), rec, clock.Now),
		recorder: rec, store: models.NewWebhookStore(db), guard: newEgressGuard(t),
	}
}

// service builds a Service over the environment's database with policy p; its
// connections go through the guard.
func (e *svcEnv) service(p EgressPolicy) *Service {
	return NewService(e.db, e.store, e.secrets, e.recorder, policy.DefaultSource{}, Options{
		Egress:        p,
		EgressOptions: []EgressOption{WithConnect(e.guard.connect(p)), WithResolver(testDNS(e.t))},
		Delivery:      DelivererOptions{ConnectTimeout: 2 * time.Second, Timeout: 5 * time.Second},
		Retry:         RetrySchedule{Base: time.Minute, Factor: 3, Max: time.Hour, MaxAttempts: 3},
		EgressIPs:     []string{"203.0.113.10", "203.0.113.11"},
		Clock:         e.clock.Now,
	})
}

func admin() Caller {
	return Caller{Actor: audit.Actor{Type: audit.ActorUser, ID: "7", Name: "Ada Admin"}, Origin: audit.Origin{SourceIP: "127.0.0.1", RequestID: "req-test"}}
}

func (e *svcEnv) create(s *Service, name, rawURL string, secret string) models.WebhookEndpoint {
	e.t.Helper()
	ep, _, err := s.Create(context.Background(), admin(), e.agency.ID, EndpointInput{
		Environment: models.WebhookProduction, Name: name, URL: rawURL, Description: "case management system",
		Events: []string{EventCourtDateScheduled, EventCourtDateChanged},
	}, SecretChoice{Typed: secret})
	if err != nil {
		e.t.Fatalf("create endpoint %s: %v", name, err)
	}
	return ep
}

// auditEvents returns every audit record of the environment's database.
func (e *svcEnv) auditEvents() []models.AuditEvent {
	e.t.Helper()
	var out []models.AuditEvent
	if err := e.db.Gorm.Order("id").Find(&out).Error; err != nil {
		e.t.Fatalf("read audit: %v", err)
	}
	return out
}

func (e *svcEnv) auditActions(action string) []models.AuditEvent {
	var out []models.AuditEvent
	for _, ev := range e.auditEvents() {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// assertNoSecretInAudit fails if any audit record carries one of the secrets,
// in plain or whsec_ form.
func (e *svcEnv) assertNoSecretInAudit(secs ...Secret) {
	e.t.Helper()
	for _, ev := range e.auditEvents() {
		row := strings.Join([]string{ev.ActorID, ev.ActorName, ev.Action, ev.TargetID, ev.TargetName, ev.Reason, ev.Details, ev.UserAgent, ev.SourceIP}, "|")
		for _, s := range secs {
			if strings.Contains(row, s.Reveal()) || strings.Contains(row, s.WhsecForm()) {
				e.t.Fatalf("audit record %s carries a secret", ev.Action)
			}
		}
	}
}

func (e *svcEnv) sealedCount() int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Gorm.Model(&models.SealedSecret{}).Where("record_type = ?", SecretRecordType).Count(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

// received is one request as a receiver saw it.
type received struct {
	header  http.Header
	body    []byte
	verdict map[string]error
}

// verifyingReceiver is a real HTTP receiver on 127.0.0.1 that checks every
// delivery with the official Standard Webhooks Go library, once for each
// secret it holds. It answers 204 when the secret named by decides verifies
// the request and 401 otherwise.
type verifyingReceiver struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	secrets map[string]Secret
	decides string
	got     []received
}

func newVerifyingReceiver(t testing.TB) *verifyingReceiver {
	rv := &verifyingReceiver{t: t, secrets: map[string]Secret{}}
	rv.srv = httptest.NewServer(http.HandlerFunc(rv.serve))
	t.Cleanup(rv.srv.Close)
	return rv
}

func (rv *verifyingReceiver) hold(name string, s Secret) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.secrets[name] = s
}

func (rv *verifyingReceiver) decideBy(name string) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.decides = name
}

func (rv *verifyingReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rv.t.Errorf("receiver read: %v", err)
	}
	rv.mu.Lock()
	rr := received{header: r.Header.Clone(), body: body, verdict: map[string]error{}}
	for name, s := range rv.secrets {
		wh, err := standardwebhooks.NewWebhook(s.WhsecForm())
		if err != nil {
			rv.t.Errorf("NewWebhook: %v", err)
			continue
		}
		rr.verdict[name] = wh.Verify(body, r.Header)
	}
	rv.got = append(rv.got, rr)
	decides := rv.decides
	rv.mu.Unlock()
	if err, ok := rr.verdict[decides]; decides == "" || (ok && err == nil) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, `{"error":"invalid signature"}`)
}

func (rv *verifyingReceiver) requests() []received {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]received(nil), rv.got...)
}

func (rv *verifyingReceiver) last() received {
	rv.t.Helper()
	got := rv.requests()
	if len(got) == 0 {
		rv.t.Fatal("the receiver got no request")
	}
	return got[len(got)-1]
}

// drain runs the worker until no delivery is due.
func drain(t testing.TB, w *Worker) int {
	t.Helper()
	total := 0
	for range 100 {
		n, err := w.RunOnce(context.Background())
		if err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
	t.Fatal("the queue did not drain")
	return total
}

func secretOf(t testing.TB, s string) Secret {
	t.Helper()
	sec, err := ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return sec
}

func deliveryStatus(t *testing.T, db *models.DB, msgID string) models.WebhookDelivery {
	t.Helper()
	var d models.WebhookDelivery
	if err := db.Gorm.Where("msg_id = ?", msgID).Take(&d).Error; err != nil {
		t.Fatalf("delivery %s: %v", msgID, err)
	}
	return d
}

func fmtSig(sec []Secret, r received) string {
	ts := r.header.Get(HeaderTimestamp)
	var unix int64
	_, _ = fmt.Sscan(ts, &unix)
	return Sign(sec, r.header.Get(HeaderID), time.Unix(unix, 0), r.body)
}
