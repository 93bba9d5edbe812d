// Package audit records security-relevant events in a per-agency hash chain
// and verifies that chain. Every record is written in the transaction of the
// change it describes.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"keyconsole/models"
)

// Outcomes of an audited action.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// Actor types.
const (
	ActorUser      = "user"
	ActorAPIClient = "api_client"
	ActorSystem    = "system"
	ActorAnonymous = "anonymous"
)

// Genesis is the previous-hash of the first record of every chain.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Actor is who did something.
type Actor struct {
	Type string
	ID   string
	Name string
}

// Origin is where a request came from.
type Origin struct {
	SourceIP  string
	UserAgent string
	RequestID string
}

// Event is what a service asks to record. Details must never carry a secret.
type Event struct {
	AgencyID   int64
	Actor      Actor
	Action     string
	TargetType string
	TargetID   string
	TargetName string
	Outcome    string
	Reason     string
	Origin     Origin
	Details    map[string]string
}

// TxRunner runs a function in one database transaction.
type TxRunner interface {
	Tx(ctx context.Context, fn func(ctx context.Context) error) error
}

// Recorder appends events to the chain.
type Recorder struct {
	db    TxRunner
	store *models.AuditStore
	now   func() time.Time
	// OnWrite, when set, is called after each committed-or-joined write (metrics).
	OnWrite func(action, outcome string)
}

// NewRecorder returns a recorder writing through store.
func NewRecorder(db TxRunner, store *models.AuditStore, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{db: db, store: store, now: now}
}

// ErrInvalidEvent means an event lacks a required field.
var ErrInvalidEvent = errors.New("audit: invalid event")

// Record appends e. Called with a context carrying a transaction it joins that
// transaction, so the event commits with the change it records or not at all;
// otherwise it runs in a transaction of its own.
func (r *Recorder) Record(ctx context.Context, e Event) error {
	if e.Action == "" || e.Outcome == "" || e.Actor.Type == "" {
		return fmt.Errorf("%w: action, outcome and actor type are required", ErrInvalidEvent)
	}
	err := r.db.Tx(ctx, func(ctx context.Context) error {
		now := r.now().UTC().Truncate(time.Microsecond)
		head, err := r.store.LockHead(ctx, e.AgencyID, Genesis, now)
		if err != nil {
			return err
		}
		ev := &models.AuditEvent{
			AgencyID:   e.AgencyID,
			Seq:        head.Seq + 1,
			OccurredAt: now,
			ActorType:  e.Actor.Type,
			ActorID:    clip(e.Actor.ID, 200),
			ActorName:  clip(e.Actor.Name, 200),
			Action:     e.Action,
			TargetType: e.TargetType,
			TargetID:   clip(e.TargetID, 200),
			TargetName: clip(e.TargetName, 300),
			Outcome:    e.Outcome,
			Reason:     clip(e.Reason, 1000),
			SourceIP:   clip(e.Origin.SourceIP, 64),
			UserAgent:  clip(e.Origin.UserAgent, 400),
			RequestID:  clip(e.Origin.RequestID, 100),
			Details:    encodeDetails(contextDetails(ctx, e.Details)),
			PrevHash:   head.Hash,
		}
		ev.Hash = Hash(ev)
		return r.store.Append(ctx, ev)
	})
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", e.Action, err)
	}
	if r.OnWrite != nil {
		r.OnWrite(e.Action, e.Outcome)
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}

func encodeDetails(d map[string]string) string {
	if len(d) == 0 {
		return ""
	}
	b, _ := json.Marshal(d) // map keys are sorted by encoding/json
	return string(b)
}

// DecodeDetails returns the details of a stored event as sorted key/value pairs.
func DecodeDetails(s string) [][2]string {
	if s == "" {
		return nil
	}
	var m map[string]string
	if json.Unmarshal([]byte(s), &m) != nil {
		return [][2]string{{"raw", s}}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, [2]string{k, m[k]})
	}
	return out
}

// Hash computes the chain hash of an event: SHA-256 over the previous hash and
// a JSON array of every field in a fixed order (JSON gives an unambiguous
// encoding of arbitrary strings).
func Hash(e *models.AuditEvent) string {
	fields := []string{
		e.PrevHash,
		strconv.FormatInt(e.AgencyID, 10),
		strconv.FormatInt(e.Seq, 10),
		e.OccurredAt.UTC().Format(time.RFC3339Nano),
		e.ActorType, e.ActorID, e.ActorName,
		e.Action,
		e.TargetType, e.TargetID, e.TargetName,
		e.Outcome, e.Reason,
		e.SourceIP, e.UserAgent, e.RequestID,
		e.Details,
	}
	b, _ := json.Marshal(fields)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
