package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// Webhook environments.
const (
	WebhookStaging    = "staging"
	WebhookProduction = "production"
)

// Webhook delivery states.
const (
	DeliveryPending    = "pending"
	DeliveryDelivering = "delivering"
	DeliverySucceeded  = "succeeded"
	DeliveryFailed     = "failed"
)

// Kinds of webhook attempts in the delivery log.
const (
	AttemptEvent         = "event"
	AttemptTest          = "test"
	AttemptTestNewSecret = "test_new_secret"
)

// WebhookEndpoint is an agency's receiver of signed events in one environment.
// Its secrets are sealed elsewhere (sealed_secrets); the endpoint only names their
// versions. PreviousVersion is non-zero during a rotation overlap, which ends at
// OverlapEndsAt.
type WebhookEndpoint struct {
	ID                  int64
	AgencyID            int64
	Environment         string
	Name                string
	URL                 string `gorm:"column:url"`
	Description         string
	EventTypes          string
	Enabled             bool
	SecretVersion       int64
	SecretSetAt         *time.Time
	PreviousVersion     int64
	OverlapEndsAt       *time.Time
	NewSecretVerifiedAt *time.Time
	LastDeliveryAt      *time.Time
	CreatedBy           string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// InOverlap reports whether a rotation overlap is open at now.
func (e WebhookEndpoint) InOverlap(now time.Time) bool {
	return e.PreviousVersion != 0 && e.OverlapEndsAt != nil && now.Before(*e.OverlapEndsAt)
}

// WebhookDelivery is one event queued for one endpoint.
type WebhookDelivery struct {
	ID            int64
	AgencyID      int64
	EndpointID    int64
	MsgID         string `gorm:"column:msg_id"`
	EventType     string
	Payload       []byte
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	ClaimToken    string
	LeaseUntil    *time.Time
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	CompletedAt   *time.Time
}

// WebhookAttempt is one entry of an endpoint's delivery log.
type WebhookAttempt struct {
	ID           int64
	AgencyID     int64
	EndpointID   int64
	DeliveryID   *int64
	MsgID        string `gorm:"column:msg_id"`
	EventType    string
	Kind         string
	Attempt      int
	SignedWith   string
	StatusCode   int
	LatencyMS    int64 `gorm:"column:latency_ms"`
	ResponseHead string
	Error        string
	Refused      bool
	OK           bool `gorm:"column:ok"`
	AttemptedAt  time.Time
}

// WebhookStore reads and writes webhook endpoints, queued deliveries and the
// delivery log. Every query about an agency's data filters by its agency id.
type WebhookStore struct{ db *DB }

// NewWebhookStore returns the webhook store.
func NewWebhookStore(db *DB) *WebhookStore { return &WebhookStore{db: db} }

// CreateEndpoint inserts an endpoint; a duplicate name in the agency is ErrConflict.
func (s *WebhookStore) CreateEndpoint(ctx context.Context, e *WebhookEndpoint) error {
	if err := s.db.Conn(ctx).Create(e).Error; err != nil {
		return fmt.Errorf("models: create webhook endpoint: %w", classify(err))
	}
	return nil
}

// Endpoint returns an agency's endpoint; another agency's id is ErrNotFound.
func (s *WebhookStore) Endpoint(ctx context.Context, agencyID, id int64) (WebhookEndpoint, error) {
	var e WebhookEndpoint
	if err := s.db.Conn(ctx).Where("agency_id = ? AND id = ?", agencyID, id).Take(&e).Error; err != nil {
		return WebhookEndpoint{}, fmt.Errorf("models: webhook endpoint %d: %w", id, classify(err))
	}
	return e, nil
}

// LockEndpoint returns an agency's endpoint for update inside a transaction
// (a row lock on PostgreSQL; SQLite transactions are already serialised).
func (s *WebhookStore) LockEndpoint(ctx context.Context, agencyID, id int64) (WebhookEndpoint, error) {
	q := s.db.Conn(ctx).Where("agency_id = ? AND id = ?", agencyID, id)
	if s.db.Dialect == Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var e WebhookEndpoint
	if err := q.Take(&e).Error; err != nil {
		return WebhookEndpoint{}, fmt.Errorf("models: webhook endpoint %d: %w", id, classify(err))
	}
	return e, nil
}

// Endpoints lists an agency's endpoints, in one environment or (env "") all, by name.
func (s *WebhookStore) Endpoints(ctx context.Context, agencyID int64, env string) ([]WebhookEndpoint, error) {
	q := s.db.Conn(ctx).Where("agency_id = ?", agencyID)
	if env != "" {
		q = q.Where("environment = ?", env)
	}
	var out []WebhookEndpoint
	if err := q.Order("environment DESC, name, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: webhook endpoints: %w", classify(err))
	}
	return out, nil
}

// UpdateEndpoint sets columns of an agency's endpoint.
func (s *WebhookStore) UpdateEndpoint(ctx context.Context, agencyID, id int64, cols map[string]any) error {
	res := s.db.Conn(ctx).Model(&WebhookEndpoint{}).Where("agency_id = ? AND id = ?", agencyID, id).Updates(cols)
	if res.Error != nil {
		return fmt.Errorf("models: update webhook endpoint %d: %w", id, classify(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("models: update webhook endpoint %d: %w", id, ErrNotFound)
	}
	return nil
}

// UpdateEndpointIf sets columns of an agency's endpoint only while its secret
// versions are still current and previous; it reports whether it did.
func (s *WebhookStore) UpdateEndpointIf(ctx context.Context, agencyID, id, current, previous int64, cols map[string]any) (bool, error) {
	res := s.db.Conn(ctx).Model(&WebhookEndpoint{}).
		Where("agency_id = ? AND id = ? AND secret_version = ? AND previous_version = ?", agencyID, id, current, previous).Updates(cols)
	if res.Error != nil {
		return false, fmt.Errorf("models: update webhook endpoint %d: %w", id, classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// DeleteEndpoint removes an agency's endpoint with its queue and log.
func (s *WebhookStore) DeleteEndpoint(ctx context.Context, agencyID, id int64) error {
	conn := s.db.Conn(ctx)
	// Children first: SQLite enforces the foreign keys, but not every
	// connection may have them switched on.
	if err := conn.Where("agency_id = ? AND endpoint_id = ?", agencyID, id).Delete(&WebhookAttempt{}).Error; err != nil {
		return fmt.Errorf("models: delete webhook attempts: %w", classify(err))
	}
	if err := conn.Where("agency_id = ? AND endpoint_id = ?", agencyID, id).Delete(&WebhookDelivery{}).Error; err != nil {
		return fmt.Errorf("models: delete webhook deliveries: %w", classify(err))
	}
	res := conn.Where("agency_id = ? AND id = ?", agencyID, id).Delete(&WebhookEndpoint{})
	if res.Error != nil {
		return fmt.Errorf("models: delete webhook endpoint %d: %w", id, classify(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("models: delete webhook endpoint %d: %w", id, ErrNotFound)
	}
	return nil
}

// ExpiredOverlaps returns up to limit endpoints, of any agency, whose rotation
// overlap ended at or before now but whose previous secret is still kept.
func (s *WebhookStore) ExpiredOverlaps(ctx context.Context, now time.Time, limit int) ([]WebhookEndpoint, error) {
	var out []WebhookEndpoint
	err := s.db.Conn(ctx).Where("previous_version <> 0 AND overlap_ends_at <= ?", now).Order("overlap_ends_at, id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: expired webhook overlaps: %w", classify(err))
	}
	return out, nil
}

// EndpointCounts are an agency's figures for the dashboard.
type EndpointCounts struct {
	Endpoints, Disabled, Overlaps, FailedDeliveries int64
}

// Counts returns an agency's endpoint figures.
func (s *WebhookStore) Counts(ctx context.Context, agencyID int64) (EndpointCounts, error) {
	var c EndpointCounts
	conn := s.db.Conn(ctx)
	if err := conn.Model(&WebhookEndpoint{}).Where("agency_id = ?", agencyID).Count(&c.Endpoints).Error; err != nil {
		return c, fmt.Errorf("models: count webhook endpoints: %w", classify(err))
	}
	if err := conn.Model(&WebhookEndpoint{}).Where("agency_id = ? AND enabled = ?", agencyID, false).Count(&c.Disabled).Error; err != nil {
		return c, fmt.Errorf("models: count webhook endpoints: %w", classify(err))
	}
	if err := conn.Model(&WebhookEndpoint{}).Where("agency_id = ? AND previous_version <> 0", agencyID).Count(&c.Overlaps).Error; err != nil {
		return c, fmt.Errorf("models: count webhook endpoints: %w", classify(err))
	}
	if err := conn.Model(&WebhookDelivery{}).Where("agency_id = ? AND status = ?", agencyID, DeliveryFailed).Count(&c.FailedDeliveries).Error; err != nil {
		return c, fmt.Errorf("models: count webhook deliveries: %w", classify(err))
	}
	return c, nil
}

// EnqueueDelivery inserts a delivery.
func (s *WebhookStore) EnqueueDelivery(ctx context.Context, d *WebhookDelivery) error {
	if err := s.db.Conn(ctx).Create(d).Error; err != nil {
		return fmt.Errorf("models: enqueue webhook delivery: %w", classify(err))
	}
	return nil
}

// Delivery returns an agency's delivery by id.
func (s *WebhookStore) Delivery(ctx context.Context, agencyID, id int64) (WebhookDelivery, error) {
	var d WebhookDelivery
	if err := s.db.Conn(ctx).Where("agency_id = ? AND id = ?", agencyID, id).Take(&d).Error; err != nil {
		return WebhookDelivery{}, fmt.Errorf("models: webhook delivery %d: %w", id, classify(err))
	}
	return d, nil
}

// DueDeliveries returns up to limit pending deliveries, of any agency, whose
// next attempt is due at now and whose endpoint is enabled, oldest due first.
func (s *WebhookStore) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	err := s.db.Conn(ctx).Model(&WebhookDelivery{}).Select("webhook_deliveries.*").
		Joins("JOIN webhook_endpoints ON webhook_endpoints.id = webhook_deliveries.endpoint_id AND webhook_endpoints.agency_id = webhook_deliveries.agency_id").
		Where("webhook_deliveries.status = ? AND webhook_deliveries.next_attempt_at <= ? AND webhook_endpoints.enabled = ?", DeliveryPending, now, true).
		Order("webhook_deliveries.next_attempt_at, webhook_deliveries.id").Limit(limit).
		Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: due webhook deliveries: %w", classify(err))
	}
	return out, nil
}

// ClaimDelivery moves a pending delivery to delivering under token until
// leaseUntil. Only one caller can win a row: the update is conditional on the
// row still being pending. It reports whether this caller won.
func (s *WebhookStore) ClaimDelivery(ctx context.Context, id int64, token string, leaseUntil, now time.Time) (bool, error) {
	res := s.db.Conn(ctx).Model(&WebhookDelivery{}).Where("id = ? AND status = ?", id, DeliveryPending).
		Updates(map[string]any{"status": DeliveryDelivering, "claim_token": token, "lease_until": leaseUntil, "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("models: claim webhook delivery %d: %w", id, classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// FinishDelivery sets the outcome of a claimed delivery, only while the claim
// is still token's; it reports whether it did.
func (s *WebhookStore) FinishDelivery(ctx context.Context, id int64, token string, cols map[string]any) (bool, error) {
	res := s.db.Conn(ctx).Model(&WebhookDelivery{}).Where("id = ? AND status = ? AND claim_token = ?", id, DeliveryDelivering, token).Updates(cols)
	if res.Error != nil {
		return false, fmt.Errorf("models: finish webhook delivery %d: %w", id, classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// ReleaseExpiredClaims returns deliveries whose claim lease ended (a worker
// stopped mid-attempt) to pending, so they are tried again.
func (s *WebhookStore) ReleaseExpiredClaims(ctx context.Context, now time.Time) (int64, error) {
	res := s.db.Conn(ctx).Model(&WebhookDelivery{}).Where("status = ? AND lease_until < ?", DeliveryDelivering, now).
		Updates(map[string]any{"status": DeliveryPending, "claim_token": "", "lease_until": nil, "updated_at": now})
	if res.Error != nil {
		return 0, fmt.Errorf("models: release webhook claims: %w", classify(res.Error))
	}
	return res.RowsAffected, nil
}

// AddAttempt appends an entry to the delivery log.
func (s *WebhookStore) AddAttempt(ctx context.Context, a *WebhookAttempt) error {
	if err := s.db.Conn(ctx).Create(a).Error; err != nil {
		return fmt.Errorf("models: add webhook attempt: %w", classify(err))
	}
	return nil
}

// Attempts returns an endpoint's latest log entries, newest first.
func (s *WebhookStore) Attempts(ctx context.Context, agencyID, endpointID int64, limit int) ([]WebhookAttempt, error) {
	var out []WebhookAttempt
	err := s.db.Conn(ctx).Where("agency_id = ? AND endpoint_id = ?", agencyID, endpointID).Order("id DESC").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: webhook attempts: %w", classify(err))
	}
	return out, nil
}

// Attempt returns one log entry of an agency's endpoint.
func (s *WebhookStore) Attempt(ctx context.Context, agencyID, endpointID, id int64) (WebhookAttempt, error) {
	var a WebhookAttempt
	err := s.db.Conn(ctx).Where("agency_id = ? AND endpoint_id = ? AND id = ?", agencyID, endpointID, id).Take(&a).Error
	if err != nil {
		return WebhookAttempt{}, fmt.Errorf("models: webhook attempt %d: %w", id, classify(err))
	}
	return a, nil
}
