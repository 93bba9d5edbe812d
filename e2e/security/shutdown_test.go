package security

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"keyconsole/e2e/harness"
	"keyconsole/models"
)

// holdingReceiver is a webhook receiver on 127.0.0.1 that keeps each
// request in hand until release is closed, then answers 204. It counts the
// webhook-id of every request and notes a request whose sender gave up
// (its connection closed) while it was held.
type holdingReceiver struct {
	url     string
	inHand  chan string
	release chan struct{}
	once    sync.Once
	cut     chan string

	mu   sync.Mutex
	seen map[string]int
}

func newHoldingReceiver(t *testing.T) *holdingReceiver {
	t.Helper()
	rv := &holdingReceiver{inHand: make(chan string, 16), release: make(chan struct{}), cut: make(chan string, 16), seen: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		id := r.Header.Get("webhook-id")
		rv.mu.Lock()
		rv.seen[id]++
		rv.mu.Unlock()
		rv.inHand <- id
		select {
		case <-rv.release:
			w.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done():
			rv.cut <- id
		}
	}))
	t.Cleanup(func() {
		rv.answer()
		srv.Close()
	})
	rv.url = srv.URL + "/hook"
	return rv
}

// answer lets every held request, and every later one, be answered.
func (rv *holdingReceiver) answer() { rv.once.Do(func() { close(rv.release) }) }

func (rv *holdingReceiver) count(id string) int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.seen[id]
}

// TestFault04_SIGTERMLetsInFlightWebhookAttemptFinish stops the console
// with SIGTERM while a receiver holds a delivery: the console stops claiming
// and waits for the attempt, the receiver's answer is recorded, the delivery
// is done after one request, and the process exits 0.
func TestFault04_SIGTERMLetsInFlightWebhookAttemptFinish(t *testing.T) {
	t.Parallel()
	for _, d := range []models.Dialect{models.SQLite, models.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			rv := newHoldingReceiver(t)
			c := harness.Start(t, harness.Options{Dialect: d, Env: map[string]string{"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8"}})
			c.SeedDemo()
			admin := signedIn(t, c, harness.AdminUser())
			h := createWebhook(t, admin, c, harness.DemoSlug, "Slow receiver", rv.url, "ShutdownSecret0123456789")

			// The platform queues an event in the console's database.
			now := time.Now().UTC().Truncate(time.Microsecond)
			const msgID = "msg_e2e_graceful_stop"
			del := models.WebhookDelivery{
				AgencyID: agencyIDOf(t, c, harness.DemoSlug), EndpointID: h.ID, MsgID: msgID, EventType: "court_date.scheduled",
				Payload: []byte(`{"type":"court_date.scheduled","timestamp":"` + now.Format(time.RFC3339Nano) + `","data":{"case":"CR-7"}}`),
				Status:  models.DeliveryPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now,
			}
			if err := models.NewWebhookStore(c.DB()).EnqueueDelivery(context.Background(), &del); err != nil {
				t.Fatal(err)
			}
			select {
			case id := <-rv.inHand:
				if id != msgID {
					t.Fatalf("receiver got webhook-id %q, want %q", id, msgID)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the delivery did not reach the receiver within 30s")
			}

			stopped := make(chan struct{})
			go func() { c.Stop(); close(stopped) }()
			// Answer once the console has begun its shutdown: it says so in its
			// log, or (the fault) it has already given up on the request.
			for deadline := time.Now().Add(20 * time.Second); !strings.Contains(c.Logs(), "stopped claiming webhook deliveries"); time.Sleep(20 * time.Millisecond) {
				select {
				case id := <-rv.cut:
					t.Errorf("at SIGTERM the console gave up on delivery %s while the receiver held it", id)
				default:
				}
				if t.Failed() || time.Now().After(deadline) {
					break
				}
			}
			rv.answer()
			<-stopped
			select {
			case id := <-rv.cut:
				t.Errorf("the console gave up on delivery %s after SIGTERM while the receiver held it", id)
			default:
			}
			if code := c.ExitCode(); code != 0 {
				t.Errorf("exit code %d after SIGTERM, want 0", code)
			}
			if n := rv.count(msgID); n != 1 {
				t.Errorf("the receiver saw webhook-id %s %d times, want once", msgID, n)
			}
			var got models.WebhookDelivery
			if err := c.DB().Gorm.Where("msg_id = ?", msgID).Take(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got.Status != models.DeliverySucceeded || got.Attempts != 1 || got.CompletedAt == nil {
				t.Errorf("delivery after a clean stop: status %s, %d attempts, last error %q; want succeeded after 1", got.Status, got.Attempts, got.LastError)
			}
			var log []models.WebhookAttempt
			if err := c.DB().Gorm.Where("msg_id = ?", msgID).Find(&log).Error; err != nil {
				t.Fatal(err)
			}
			if len(log) != 1 || !log[0].OK || log[0].StatusCode != http.StatusNoContent {
				t.Errorf("delivery log after a clean stop: %+v, want one accepted attempt", log)
			}
		})
	}
}
