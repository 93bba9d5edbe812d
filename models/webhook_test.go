package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

func webhookAgency(t *testing.T, db *models.DB, slug string) models.Agency {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := models.Agency{Slug: slug, Name: slug, CreatedAt: now, UpdatedAt: now}
	if err := models.NewAgencyStore(db).Create(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func newEndpoint(t *testing.T, s *models.WebhookStore, agencyID int64, name string, now time.Time) models.WebhookEndpoint {
	t.Helper()
	e := models.WebhookEndpoint{AgencyID: agencyID, Environment: models.WebhookStaging, Name: name, URL: "https://hooks.example.gov/" + name,
		EventTypes: "court_date.scheduled", Enabled: true, SecretVersion: 1, SecretSetAt: &now, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateEndpoint(context.Background(), &e); err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	return e
}

func enqueue(t *testing.T, s *models.WebhookStore, e models.WebhookEndpoint, msgID string, due time.Time) models.WebhookDelivery {
	t.Helper()
	d := models.WebhookDelivery{AgencyID: e.AgencyID, EndpointID: e.ID, MsgID: msgID, EventType: "court_date.scheduled", Payload: []byte(`{}`),
		Status: models.DeliveryPending, NextAttemptAt: due, CreatedAt: due, UpdatedAt: due}
	if err := s.EnqueueDelivery(context.Background(), &d); err != nil {
		t.Fatalf("EnqueueDelivery: %v", err)
	}
	return d
}

func TestWebhookEndpointsAreScopedToTheirAgency(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		s := models.NewWebhookStore(db)
		a, b := webhookAgency(t, db, "a"), webhookAgency(t, db, "b")
		now := time.Now().UTC().Truncate(time.Microsecond)
		e := newEndpoint(t, s, a.ID, "hooks", now)
		if _, err := s.Endpoint(ctx, b.ID, e.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("Endpoint from another agency = %v", err)
		}
		if err := s.UpdateEndpoint(ctx, b.ID, e.ID, map[string]any{"enabled": false}); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("UpdateEndpoint from another agency = %v", err)
		}
		if err := s.DeleteEndpoint(ctx, b.ID, e.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("DeleteEndpoint from another agency = %v", err)
		}
		if list, err := s.Endpoints(ctx, b.ID, ""); err != nil || len(list) != 0 {
			t.Fatalf("Endpoints of another agency = %v, %v", list, err)
		}
		// Names are unique in an agency, not across agencies.
		dup := models.WebhookEndpoint{AgencyID: a.ID, Environment: models.WebhookProduction, Name: "hooks", URL: "https://x.example.gov", CreatedAt: now, UpdatedAt: now}
		if err := s.CreateEndpoint(ctx, &dup); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("duplicate name = %v, want conflict", err)
		}
		newEndpoint(t, s, b.ID, "hooks", now)
		got, err := s.Endpoint(ctx, a.ID, e.ID)
		if err != nil || got.URL != e.URL || !got.Enabled || got.SecretSetAt == nil || !got.SecretSetAt.Equal(now) || !got.CreatedAt.Equal(now) {
			t.Fatalf("round trip: %+v, %v", got, err)
		}
		// A conditional update applies only to the expected secret versions.
		ok, err := s.UpdateEndpointIf(ctx, a.ID, e.ID, 2, 0, map[string]any{"enabled": false})
		if err != nil || ok {
			t.Fatalf("UpdateEndpointIf with stale versions = %v, %v", ok, err)
		}
		ok, err = s.UpdateEndpointIf(ctx, a.ID, e.ID, 1, 0, map[string]any{"previous_version": 1, "secret_version": 2, "overlap_ends_at": now.Add(time.Hour)})
		if err != nil || !ok {
			t.Fatalf("UpdateEndpointIf = %v, %v", ok, err)
		}
		got, _ = s.Endpoint(ctx, a.ID, e.ID)
		if !got.InOverlap(now) || got.InOverlap(now.Add(time.Hour)) {
			t.Fatalf("InOverlap around the window end %v", got.OverlapEndsAt)
		}
		if list, err := s.ExpiredOverlaps(ctx, now.Add(time.Hour-time.Microsecond), 10); err != nil || len(list) != 0 {
			t.Fatalf("ExpiredOverlaps before the end = %d, %v", len(list), err)
		}
		if list, err := s.ExpiredOverlaps(ctx, now.Add(time.Hour), 10); err != nil || len(list) != 1 || list[0].ID != e.ID {
			t.Fatalf("ExpiredOverlaps at the end = %v, %v", list, err)
		}
	})
}

func TestWebhookDeliveryClaims(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		s := models.NewWebhookStore(db)
		a := webhookAgency(t, db, "a")
		now := time.Now().UTC().Truncate(time.Microsecond)
		on := newEndpoint(t, s, a.ID, "on", now)
		off := newEndpoint(t, s, a.ID, "off", now)
		if err := s.UpdateEndpoint(ctx, a.ID, off.ID, map[string]any{"enabled": false}); err != nil {
			t.Fatal(err)
		}
		d1 := enqueue(t, s, on, "msg_1", now)
		enqueue(t, s, on, "msg_later", now.Add(time.Minute))
		enqueue(t, s, off, "msg_off", now)
		if err := s.EnqueueDelivery(ctx, &models.WebhookDelivery{AgencyID: a.ID, EndpointID: on.ID, MsgID: "msg_1", EventType: "x", Payload: []byte(`{}`), Status: models.DeliveryPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("duplicate message id = %v", err)
		}

		due, err := s.DueDeliveries(ctx, now, 10)
		if err != nil || len(due) != 1 || due[0].MsgID != "msg_1" || string(due[0].Payload) != `{}` {
			t.Fatalf("DueDeliveries = %+v, %v; want only msg_1 (later ones wait, a disabled endpoint's wait)", due, err)
		}
		won, err := s.ClaimDelivery(ctx, d1.ID, "w1", now.Add(time.Minute), now)
		if err != nil || !won {
			t.Fatalf("first claim = %v, %v", won, err)
		}
		if won, _ := s.ClaimDelivery(ctx, d1.ID, "w2", now.Add(time.Minute), now); won {
			t.Fatal("second claim won")
		}
		if due, _ := s.DueDeliveries(ctx, now, 10); len(due) != 0 {
			t.Fatal("a claimed delivery is still due")
		}
		if ok, err := s.FinishDelivery(ctx, d1.ID, "w2", map[string]any{"status": models.DeliverySucceeded}); err != nil || ok {
			t.Fatalf("finish with another token = %v, %v", ok, err)
		}
		// The lease runs out: the delivery is pending again and the old claim
		// can no longer finish it.
		if n, err := s.ReleaseExpiredClaims(ctx, now.Add(30*time.Second)); err != nil || n != 0 {
			t.Fatalf("release before the lease ends = %d, %v", n, err)
		}
		if n, err := s.ReleaseExpiredClaims(ctx, now.Add(time.Minute+time.Second)); err != nil || n != 1 {
			t.Fatalf("release after the lease = %d, %v", n, err)
		}
		if ok, _ := s.FinishDelivery(ctx, d1.ID, "w1", map[string]any{"status": models.DeliverySucceeded}); ok {
			t.Fatal("an expired claim finished the delivery")
		}
		won, _ = s.ClaimDelivery(ctx, d1.ID, "w3", now.Add(2*time.Minute), now)
		if ok, err := s.FinishDelivery(ctx, d1.ID, "w3", map[string]any{"status": models.DeliverySucceeded, "attempts": 1, "completed_at": now}); !won || err != nil || !ok {
			t.Fatalf("claim and finish = %v %v %v", won, ok, err)
		}
		if got, _ := s.Delivery(ctx, a.ID, d1.ID); got.Status != models.DeliverySucceeded || got.Attempts != 1 {
			t.Fatalf("delivery %+v", got)
		}

		// The log is per endpoint and agency; deleting the endpoint drops its
		// queue and log.
		id := d1.ID
		att := models.WebhookAttempt{AgencyID: a.ID, EndpointID: on.ID, DeliveryID: &id, MsgID: "msg_1", EventType: "x", Kind: models.AttemptEvent,
			Attempt: 1, SignedWith: "v1", StatusCode: 204, LatencyMS: 12, ResponseHead: "ok", OK: true, AttemptedAt: now}
		if err := s.AddAttempt(ctx, &att); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Attempt(ctx, a.ID, off.ID, att.ID); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("attempt under another endpoint = %+v, %v", got, err)
		}
		log, err := s.Attempts(ctx, a.ID, on.ID, 10)
		if err != nil || len(log) != 1 || log[0].LatencyMS != 12 || !log[0].OK || *log[0].DeliveryID != d1.ID {
			t.Fatalf("Attempts = %+v, %v", log, err)
		}
		counts, err := s.Counts(ctx, a.ID)
		if err != nil || counts.Endpoints != 2 || counts.Disabled != 1 || counts.Overlaps != 0 || counts.FailedDeliveries != 0 {
			t.Fatalf("Counts = %+v, %v", counts, err)
		}
		if err := s.DeleteEndpoint(ctx, a.ID, on.ID); err != nil {
			t.Fatal(err)
		}
		var left int64
		db.Gorm.Model(&models.WebhookDelivery{}).Where("endpoint_id = ?", on.ID).Count(&left)
		var logLeft int64
		db.Gorm.Model(&models.WebhookAttempt{}).Where("endpoint_id = ?", on.ID).Count(&logLeft)
		if left != 0 || logLeft != 0 {
			t.Fatalf("after delete: %d deliveries, %d log entries", left, logLeft)
		}
	})
}
