package audit

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"keyconsole/models"
)

// seedEvents appends n generated events to an agency's chain with batch
// inserts, computing every sequence number and hash here as the Recorder
// would, and moves the chain head to the last one. gen fills in the fields of
// event i (0-based); OccurredAt starts at start and advances by step.
func seedEvents(tb testing.TB, db *models.DB, agencyID int64, n int, start time.Time, step time.Duration, gen func(i int, e *models.AuditEvent)) {
	tb.Helper()
	ctx := context.Background()
	store := models.NewAuditStore(db)
	prev, seq := Genesis, int64(0)
	if h, err := store.Head(ctx, agencyID); err == nil {
		prev, seq = h.Hash, h.Seq
	}
	const batch = 5000
	buf := make([]models.AuditEvent, 0, batch)
	flush := func() {
		if len(buf) == 0 {
			return
		}
		last := buf[len(buf)-1]
		err := db.Tx(ctx, func(ctx context.Context) error {
			c := db.Conn(ctx)
			if db.Dialect == models.SQLite {
				// One prepared statement per row is far faster on SQLite than
				// a statement with thousands of parameters.
				stmt, err := c.Statement.ConnPool.PrepareContext(ctx, insertEventSQL)
				if err != nil {
					return err
				}
				defer stmt.Close()
				for _, e := range buf {
					if _, err := stmt.ExecContext(ctx, e.AgencyID, e.Seq, e.OccurredAt, e.ActorType, e.ActorID, e.ActorName, e.Action,
						e.TargetType, e.TargetID, e.TargetName, e.Outcome, e.Reason, e.SourceIP, e.UserAgent, e.RequestID, e.Details,
						e.PrevHash, e.Hash); err != nil {
						return err
					}
				}
			} else if err := c.CreateInBatches(&buf, 1000).Error; err != nil {
				return err
			}
			return c.Save(&models.AuditHead{AgencyID: agencyID, Seq: last.Seq, Hash: last.Hash, UpdatedAt: last.OccurredAt}).Error
		})
		if err != nil {
			tb.Fatalf("seed audit events: %v", err)
		}
		buf = buf[:0]
	}
	for i := 0; i < n; i++ {
		seq++
		e := models.AuditEvent{AgencyID: agencyID, Seq: seq, OccurredAt: start.Add(time.Duration(i) * step).UTC().Truncate(time.Microsecond),
			ActorType: ActorUser, Outcome: OutcomeSuccess, Action: "test.event"}
		if gen != nil {
			gen(i, &e)
		}
		e.PrevHash = prev
		e.Hash = Hash(&e)
		prev = e.Hash
		buf = append(buf, e)
		if len(buf) == batch {
			flush()
		}
	}
	flush()
}

const insertEventSQL = `INSERT INTO audit_events (agency_id, seq, occurred_at, actor_type, actor_id, actor_name, action,
	target_type, target_id, target_name, outcome, reason, source_ip, user_agent, request_id, details, prev_hash, hash)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

var (
	genActors  = []string{"Ada Admin", "Rita Reviewer", "=HYPERLINK(\"http://evil.example\")", "@SUM(1+1)", "Zoë Ünal", "+1 555 0100", "-dash", "\tTabby"}
	genActions = []string{"auth.sign_in", "api_credential.create", "api_credential.rotate", "api_credential.revoke", "ssh_key.upload", "webhook.update", "auth.sign_out"}
	genOutcome = []string{OutcomeSuccess, OutcomeSuccess, OutcomeSuccess, OutcomeFailure, OutcomeDenied}
)

// genEvent fills an event deterministically from its index with a mix of
// actors (some shaped like spreadsheet formulas), actions and outcomes.
func genEvent(i int, e *models.AuditEvent) {
	e.ActorType = ActorUser
	e.ActorID = strconv.Itoa(i % len(genActors))
	e.ActorName = genActors[i%len(genActors)]
	e.Action = genActions[i%len(genActions)]
	e.Outcome = genOutcome[i%len(genOutcome)]
	e.TargetType = "api_credential"
	e.TargetID = fmt.Sprintf("cred-%d", i%97)
	e.TargetName = fmt.Sprintf("Nightly sync %d", i%97)
	if e.Outcome != OutcomeSuccess {
		e.Reason = []string{"=1+1", "bad secret, \"quoted\"", "line\nbreak", "\rreturn"}[i%4]
	}
	e.SourceIP = fmt.Sprintf("10.0.%d.%d", i%200, i%250)
	e.UserAgent = "Mozilla/5.0 (test) ☃"
	e.RequestID = fmt.Sprintf("req-%08d", i)
	e.Details = fmt.Sprintf(`{"n":"%d","note":"=cmd|' /C calc'!A0"}`, i)
}
