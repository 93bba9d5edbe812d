package webhooks

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// heldReceiver keeps each request until release is closed (then 204), and
// says when it has one in hand and when the sender gave up on one.
type heldReceiver struct {
	srv     *httptest.Server
	inHand  chan string
	cut     chan string
	release chan struct{}
	once    sync.Once
}

func newHeldReceiver(t *testing.T) *heldReceiver {
	rv := &heldReceiver{inHand: make(chan string, 8), cut: make(chan string, 8), release: make(chan struct{})}
	rv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get(HeaderID)
		rv.inHand <- id
		select {
		case <-rv.release:
			w.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done():
			rv.cut <- id
		}
	}))
	t.Cleanup(func() { rv.answer(); rv.srv.Close() })
	return rv
}

func (rv *heldReceiver) answer() { rv.once.Do(func() { close(rv.release) }) }

func (rv *heldReceiver) waitInHand(t *testing.T, want string) {
	t.Helper()
	select {
	case id := <-rv.inHand:
		if id != want {
			t.Fatalf("receiver got %s, want %s", id, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery reached the receiver within 30s")
	}
}

func TestFault04_WorkerShutdownLetsInFlightAttemptsFinish(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		svc := env.service(loopbackOnly())
		rv := newHeldReceiver(t)
		ep := env.create(svc, "slow", rv.srv.URL, "shutdown-secret-000001")
		first, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateScheduled, []byte(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		w := svc.NewWorker(WorkerOptions{ID: "w"})
		runCtx, stop := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- w.Run(runCtx) }()
		rv.waitInHand(t, first)

		// The stop: no more claims, the attempt in flight goes on.
		stop()
		second, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateScheduled, []byte(`{"n":2}`))
		if err != nil {
			t.Fatal(err)
		}
		shut := make(chan error, 1)
		go func() { shut <- w.Shutdown(ctx) }()
		rv.answer()
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := <-ran; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
		select {
		case id := <-rv.cut:
			t.Fatalf("the attempt of %s was cut at the stop", id)
		default:
		}
		if d := deliveryStatus(t, db, first); d.Status != models.DeliverySucceeded || d.Attempts != 1 {
			t.Fatalf("in-flight delivery after the stop: %s after %d attempts (%s)", d.Status, d.Attempts, d.LastError)
		}
		if d := deliveryStatus(t, db, second); d.Status != models.DeliveryPending || d.Attempts != 0 || d.ClaimToken != "" {
			t.Fatalf("a delivery queued after the stop was claimed: %+v", d)
		}
	})
}

func TestFault04_WorkerShutdownGraceCancelsAndRetriesLater(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		env := newSvcEnv(t, db)
		svc := env.service(loopbackOnly())
		rv := newHeldReceiver(t)
		ep := env.create(svc, "stuck", rv.srv.URL, "shutdown-secret-000002")
		msg, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateScheduled, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		w := svc.NewWorker(WorkerOptions{ID: "w"})
		runCtx, stop := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- w.Run(runCtx) }()
		rv.waitInHand(t, msg)

		stop()
		grace, over := context.WithCancel(ctx)
		over() // the grace is already over
		if err := w.Shutdown(grace); !errors.Is(err, context.Canceled) {
			t.Fatalf("Shutdown after the grace: %v, want the grace's error", err)
		}
		<-ran
		select {
		case <-rv.cut:
		case <-time.After(30 * time.Second):
			t.Fatal("the receiver never saw the attempt end")
		}
		d := deliveryStatus(t, db, msg)
		if d.Status != models.DeliveryPending || d.Attempts != 1 || d.LastError != "the delivery was canceled" || !d.NextAttemptAt.After(env.clock.Now()) {
			t.Fatalf("cut delivery: %+v, want pending for a later retry", d)
		}
	})
}
