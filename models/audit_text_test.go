package models_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// textOf is an event as AscendingText should deliver it.
func textOf(e *models.AuditEvent) models.AuditText {
	return models.AuditText{ID: e.ID, Seq: e.Seq, OccurredAt: []byte(e.OccurredAt.UTC().Format(time.RFC3339Nano)), ActorType: e.ActorType,
		ActorID: e.ActorID, ActorName: e.ActorName, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID,
		TargetName: e.TargetName, Outcome: e.Outcome, Reason: e.Reason, SourceIP: e.SourceIP, UserAgent: e.UserAgent,
		RequestID: e.RequestID, Details: e.Details, PrevHash: e.PrevHash, Hash: e.Hash}
}

func sameText(a, b *models.AuditText) bool {
	return reflect.DeepEqual(a, b)
}

// collectText reads every event matching f with AscendingText in batches
// of limit, copying each one out of its callback.
func collectText(t *testing.T, store *models.AuditStore, f models.AuditFilter, limit int) ([]models.AuditText, error) {
	t.Helper()
	var out []models.AuditText
	for {
		n, last, err := store.AscendingText(context.Background(), f, limit, func(e *models.AuditText) error {
			c := *e
			c.OccurredAt = append([]byte(nil), e.OccurredAt...)
			out = append(out, c)
			return nil
		})
		if err != nil {
			return out, err
		}
		if n < limit {
			return out, nil
		}
		f.AfterID = last
	}
}

// TestAuditAscendingTextMatchesAscending reads the same filtered batches
// with Ascending and AscendingText and expects the same events, with times
// formatted as time.Time formats them.
func TestAuditAscendingTextMatchesAscending(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		ag := newAgency(t, db, "text-county")
		other := newAgency(t, db, "other-county")
		base := time.Date(2026, 2, 3, 4, 5, 6, 789000, time.UTC)
		for i := range 25 {
			for _, a := range []int64{ag.ID, other.ID} {
				at := base.Add(time.Duration(i)*time.Minute + time.Duration(i*i*1013)*time.Microsecond)
				if i%5 == 0 {
					at = at.Truncate(time.Second)
				}
				e := models.AuditEvent{AgencyID: a, Seq: int64(i + 1), OccurredAt: at, ActorType: "user",
					ActorID: fmt.Sprint(i), ActorName: "Zoë, \"quoted\"", Action: []string{"a.one", "a.two"}[i%2], TargetType: "t", TargetID: "id",
					TargetName: "name", Outcome: "success", Reason: "=1+1\r\n", SourceIP: "192.0.2.1", UserAgent: "ua", RequestID: "r",
					Details: `{"k":"v"}`, PrevHash: fmt.Sprintf("%064d", i), Hash: fmt.Sprintf("%064d", i+1)}
				if err := db.Gorm.Create(&e).Error; err != nil {
					t.Fatal(err)
				}
			}
		}
		store := models.NewAuditStore(db)
		from := base.Add(3 * time.Minute)
		for _, f := range []models.AuditFilter{
			{AgencyID: ag.ID},
			{AgencyID: ag.ID, Action: "a.two"},
			{AgencyID: ag.ID, Action: "a.", From: &from, BeforeID: 40},
			{AgencyID: other.ID, AfterID: 10},
		} {
			var want []models.AuditText
			for cur := f; ; {
				b, err := store.Ascending(ctx, cur, 4)
				if err != nil {
					t.Fatal(err)
				}
				for i := range b {
					want = append(want, textOf(&b[i]))
				}
				if len(b) < 4 {
					break
				}
				cur.AfterID = b[len(b)-1].ID
			}
			got, err := collectText(t, store, f, 4)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 || len(got) != len(want) {
				t.Fatalf("%+v: %d events, want %d", f, len(got), len(want))
			}
			for i := range want {
				if !sameText(&got[i], &want[i]) {
					t.Fatalf("%+v event %d:\n%+v\nwant\n%+v", f, i, got[i], want[i])
				}
			}
		}
	})
}

// TestAuditAscendingTextReadsStoredTimesAsTheDriver stores occurred_at
// values in every form the SQLite driver reads (and some it does not) and
// expects AscendingText to deliver what the driver's time.Time formats to,
// or to fail where reading the event fails.
func TestAuditAscendingTextReadsStoredTimesAsTheDriver(t *testing.T) {
	db := modelstest.Open(t, models.SQLite)
	ag := newAgency(t, db, "times-county")
	store := models.NewAuditStore(db)
	for _, v := range []any{
		"2026-11-26 05:05:53.740234+00:00",
		"2026-11-26 05:05:53+00:00",
		"2026-11-26 05:05:53.000+00:00",
		"2026-11-26 05:05:53.100+00:00",
		"2026-11-26 05:05:53.123456789+00:00",
		"2026-11-26 05:05:53.1234567891+00:00",
		"2026-11-26 05:05:53.+00:00",
		"2026-11-26 05:05:53,5+00:00",
		"2026-11-26T05:05:53.5+00:00",
		"2026-11-26 05:05:53.5+02:30",
		"2026-11-26 05:05:53.5-00:00",
		"2026-11-26 05:05:53.5Z",
		"2026-11-26T05:05:53Z",
		"2026-11-26 05:05:53",
		"2026-11-26 05:05",
		"2026-11-26",
		"2026-11-26 5:05:53+00:00",
		"2024-02-29 23:59:59.999999+00:00",
		"2023-02-29 23:59:59+00:00",
		"2026-04-31 00:00:00+00:00",
		"2026-13-01 00:00:00+00:00",
		"2026-11-26 24:00:00+00:00",
		"2026-11-26 23:60:00+00:00",
		"2026-11-26 23:59:60+00:00",
		"0000-01-01 00:00:00+00:00",
		"9999-12-31 23:59:59.999999999+00:00",
		"2026-11-26 05:05:53.123 +0000 UTC",
		"2026-11-26 05:05:53.123 +0100 CET m=+0.000000001",
		" 2026-11-26 05:05:53+00:00",
		"2026-11-26 05:05:53+00:00 ",
		"yesterday",
		"",
		int64(1764133553),
		1764133553.5,
		[]byte("2026-11-26 05:05:53+00:00"),
	} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			ctx := context.Background()
			if err := db.Gorm.Exec("DELETE FROM audit_events WHERE agency_id = ?", ag.ID).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Gorm.Exec(`INSERT INTO audit_events (agency_id, seq, occurred_at, actor_type, action, outcome, prev_hash, hash)
				VALUES (?, 1, ?, 'user', 'a.b', 'success', 'p', 'h')`, ag.ID, v).Error; err != nil {
				t.Fatal(err)
			}
			f := models.AuditFilter{AgencyID: ag.ID}
			evs, werr := store.Ascending(ctx, f, 10)
			got, gerr := collectText(t, store, f, 10)
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("Ascending error %v, AscendingText error %v", werr, gerr)
			}
			if werr != nil {
				if !strings.Contains(gerr.Error(), "unsupported Scan") {
					t.Errorf("AscendingText error %v", gerr)
				}
				return
			}
			if len(evs) != 1 || len(got) != 1 {
				t.Fatalf("%d and %d events, want 1", len(evs), len(got))
			}
			if want := textOf(&evs[0]); !sameText(&got[0], &want) {
				t.Fatalf("AscendingText %q, want %q", got[0].OccurredAt, want.OccurredAt)
			}
		})
	}
}

// TestAuditAscendingTextReadsOddTextsAsAscending stores text columns
// that cannot travel joined (a NUL inside a value, a blob holding one) and
// others that can (empty values, blobs, invalid UTF-8) among ordinary rows,
// and expects AscendingText to read every batch as Ascending does.
func TestAuditAscendingTextReadsOddTextsAsAscending(t *testing.T) {
	db := modelstest.Open(t, models.SQLite)
	ag := newAgency(t, db, "odd-county")
	store := models.NewAuditStore(db)
	at := "2026-11-26 05:05:53.740234+00:00"
	for i := range 40 {
		var actor, details any = fmt.Sprintf("actor %d", i), ""
		switch i % 10 {
		case 3:
			actor = "nul\x00inside"
		case 5:
			actor = []byte("blob, \"quoted\"")
		case 6:
			details = []byte("blob\x00nul")
		case 7:
			actor = "\xff\xfe not UTF-8"
		case 8:
			actor = "\x00"
		}
		if err := db.Gorm.Exec(`INSERT INTO audit_events (agency_id, seq, occurred_at, actor_type, actor_name, action, outcome, details, prev_hash, hash)
			VALUES (?, ?, ?, 'user', ?, 'a.b', 'success', ?, 'p', 'h')`, ag.ID, i+1, at, actor, details).Error; err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{1, 3, 7, 100} {
		f := models.AuditFilter{AgencyID: ag.ID}
		var want []models.AuditText
		var buf []models.AuditEvent
		for cur := f; ; {
			var err error
			if buf, err = store.Ascending(context.Background(), cur, limit); err != nil {
				t.Fatal(err)
			}
			for i := range buf {
				want = append(want, textOf(&buf[i]))
			}
			if len(buf) < limit {
				break
			}
			cur.AfterID = buf[len(buf)-1].ID
		}
		got, err := collectText(t, store, f, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != 40 || len(got) != len(want) {
			t.Fatalf("limit %d: %d events, want %d", limit, len(got), len(want))
		}
		for i := range want {
			if !sameText(&got[i], &want[i]) {
				t.Fatalf("limit %d, event %d:\n%+v\nwant\n%+v", limit, i, got[i], want[i])
			}
		}
	}
}
