package audit

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

func exec1(t *testing.T, db *models.DB, sql string, args ...any) {
	t.Helper()
	if err := db.Gorm.Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func bySeq(t *testing.T, f fixture, seq int64) models.AuditEvent {
	t.Helper()
	e, err := f.store.BySeq(context.Background(), f.agency.ID, seq)
	if err != nil {
		t.Fatalf("seq %d: %v", seq, err)
	}
	return e
}

func TestVerifyNamesTheFirstBrokenRecord(t *testing.T) {
	const n = 40
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		cases := []struct {
			name string
			// tamper changes the chain and returns the id and seq of the
			// record the verifier must name.
			tamper  func(t *testing.T, f fixture) (id, seq int64)
			problem string
		}{
			{"intact", func(t *testing.T, f fixture) (int64, int64) { return 0, 0 }, ""},
			{"field updated", func(t *testing.T, f fixture) (int64, int64) {
				e := bySeq(t, f, 17)
				exec1(t, f.db, "UPDATE audit_events SET outcome = 'success', reason = '' WHERE id = ?", e.ID)
				exec1(t, f.db, "UPDATE audit_events SET actor_name = 'Someone Else' WHERE id = ?", e.ID)
				return e.ID, 17
			}, "was modified"},
			{"field and hash updated", func(t *testing.T, f fixture) (int64, int64) {
				e := bySeq(t, f, 17)
				e.ActorName = "Someone Else"
				exec1(t, f.db, "UPDATE audit_events SET actor_name = ?, hash = ? WHERE id = ?", e.ActorName, Hash(&e), e.ID)
				return bySeq(t, f, 18).ID, 18
			}, "does not link"},
			{"record deleted", func(t *testing.T, f fixture) (int64, int64) {
				exec1(t, f.db, "DELETE FROM audit_events WHERE agency_id = ? AND seq = 12", f.agency.ID)
				return bySeq(t, f, 13).ID, 13
			}, "where 12 was expected"},
			{"first record deleted", func(t *testing.T, f fixture) (int64, int64) {
				exec1(t, f.db, "DELETE FROM audit_events WHERE agency_id = ? AND seq = 1", f.agency.ID)
				return bySeq(t, f, 2).ID, 2
			}, "earlier records are missing"},
			{"last records deleted", func(t *testing.T, f fixture) (int64, int64) {
				exec1(t, f.db, "DELETE FROM audit_events WHERE agency_id = ? AND seq >= ?", f.agency.ID, n-1)
				return 0, n - 1
			}, "records at the end were removed"},
			{"two records swapped", func(t *testing.T, f fixture) (int64, int64) {
				a, b := bySeq(t, f, 10), bySeq(t, f, 20)
				exec1(t, f.db, "UPDATE audit_events SET seq = -1 WHERE id = ?", a.ID)
				exec1(t, f.db, "UPDATE audit_events SET seq = 10 WHERE id = ?", b.ID)
				exec1(t, f.db, "UPDATE audit_events SET seq = 20 WHERE id = ?", a.ID)
				return b.ID, 10
			}, "does not link"},
			{"record inserted", func(t *testing.T, f fixture) (int64, int64) {
				// A forger shifts the later records and slots in a record
				// that links correctly to its predecessor.
				orig := bySeq(t, f, 25)
				prev := bySeq(t, f, 24)
				exec1(t, f.db, "UPDATE audit_events SET seq = -(seq + 1) WHERE agency_id = ? AND seq >= 25", f.agency.ID)
				exec1(t, f.db, "UPDATE audit_events SET seq = -seq WHERE agency_id = ? AND seq < 0", f.agency.ID)
				forged := models.AuditEvent{AgencyID: f.agency.ID, Seq: 25, OccurredAt: prev.OccurredAt, ActorType: ActorUser, ActorName: "Mallory",
					Action: "api_credential.create", Outcome: OutcomeSuccess, PrevHash: prev.Hash}
				forged.Hash = Hash(&forged)
				if err := f.store.Insert(context.Background(), &forged); err != nil {
					t.Fatal(err)
				}
				exec1(t, f.db, "UPDATE audit_heads SET seq = seq + 1 WHERE agency_id = ?", f.agency.ID)
				return orig.ID, 26
			}, "does not link"},
			{"record appended behind the recorder", func(t *testing.T, f fixture) (int64, int64) {
				last := bySeq(t, f, n)
				forged := models.AuditEvent{AgencyID: f.agency.ID, Seq: n + 1, OccurredAt: last.OccurredAt, ActorType: ActorUser,
					Action: "api_credential.create", Outcome: OutcomeSuccess, PrevHash: last.Hash}
				forged.Hash = Hash(&forged)
				if err := f.store.Insert(context.Background(), &forged); err != nil {
					t.Fatal(err)
				}
				return forged.ID, n + 1
			}, "appended outside the recorder"},
			{"forged purge anchor", func(t *testing.T, f fixture) (int64, int64) {
				next := bySeq(t, f, 6)
				exec1(t, f.db, "DELETE FROM audit_events WHERE agency_id = ? AND seq <= 5", f.agency.ID)
				anchor := models.AuditEvent{AgencyID: f.agency.ID, Seq: 5, OccurredAt: next.OccurredAt, ActorType: ActorSystem,
					Action: ActionPurgeAnchor, Outcome: OutcomeSuccess, PrevHash: next.PrevHash}
				anchor.Hash = Hash(&anchor)
				if err := f.store.Insert(context.Background(), &anchor); err != nil {
					t.Fatal(err)
				}
				return anchor.ID, 5
			}, "not confirmed"},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, db, "tamper-"+string(rune('a'+i)))
				seedEvents(t, db, f.agency.ID, n, seedStart, time.Hour, genEvent)
				id, seq := tc.tamper(t, f)
				rep, err := NewVerifier(f.store).Verify(context.Background(), f.agency.ID)
				if err != nil {
					t.Fatal(err)
				}
				if tc.problem == "" {
					if !rep.Intact || rep.Break != nil || rep.Records != n || rep.HeadSeq != n {
						t.Fatalf("untouched chain: %+v", rep)
					}
					return
				}
				if rep.Intact || rep.Break == nil {
					t.Fatalf("tampering not detected: %+v", rep)
				}
				if rep.Break.EventID != id || rep.Break.Seq != seq || !strings.Contains(rep.Break.Problem, tc.problem) {
					t.Fatalf("break = %+v, want event %d seq %d problem containing %q", *rep.Break, id, seq, tc.problem)
				}
			})
		}
	})
}

func TestVerifyWithRecorderAndSmallBatches(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db, "rec-county")
		ctx := context.Background()
		for i := 0; i < 25; i++ {
			if err := f.rec.Record(ctx, Event{AgencyID: f.agency.ID, Actor: Actor{Type: ActorUser, ID: "1", Name: "Ada"}, Action: "api_credential.rotate",
				Outcome: OutcomeSuccess, TargetType: "api_credential", TargetID: "c1", Details: map[string]string{"i": string(rune('a' + i))}}); err != nil {
				t.Fatal(err)
			}
		}
		v := NewVerifier(f.store)
		v.batch = 4 // cross batch boundaries
		rep, err := v.Verify(ctx, f.agency.ID)
		if err != nil || !rep.Intact || rep.Records != 25 || rep.HeadSeq != 25 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
		e := bySeq(t, f, 9)
		exec1(t, db, "UPDATE audit_events SET details = '{\"i\":\"z\"}' WHERE id = ?", e.ID)
		rep, err = v.Verify(ctx, f.agency.ID)
		if err != nil || rep.Intact || rep.Break.EventID != e.ID {
			t.Fatalf("verify after edit: %+v %v", rep, err)
		}
	})
}

func TestChainMonitorCatchesUpAndReverifies(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newFixture(t, db, "monitor-county")
		seedEvents(t, db, f.agency.ID, 30, seedStart, time.Hour, genEvent)
		now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
		m := NewChainMonitor(NewVerifier(f.store), time.Minute, 10*time.Minute, func() time.Time { return now })
		st, err := m.Status(ctx, f.agency.ID)
		if err != nil || !st.Intact || st.Records != 30 {
			t.Fatalf("first status: %+v %v", st, err)
		}
		seedEvents(t, db, f.agency.ID, 5, seedStart.Add(100*time.Hour), time.Hour, genEvent)
		if st, _ := m.Status(ctx, f.agency.ID); st.Records != 30 {
			t.Fatalf("a fresh result was not reused: %+v", st)
		}
		now = now.Add(2 * time.Minute)
		if st, err := m.Status(ctx, f.agency.ID); err != nil || !st.Intact || st.Records != 35 || st.HeadSeq != 35 {
			t.Fatalf("catch-up status: %+v %v", st, err)
		}
		// An old record modified now is found at the next full verification.
		e := bySeq(t, f, 3)
		exec1(t, db, "UPDATE audit_events SET reason = 'edited' WHERE id = ?", e.ID)
		now = now.Add(2 * time.Minute)
		if st, _ := m.Status(ctx, f.agency.ID); !st.Intact {
			t.Fatalf("catch-up re-read old records: %+v", st)
		}
		now = now.Add(10 * time.Minute)
		st, err = m.Status(ctx, f.agency.ID)
		if err != nil || st.Intact || st.Break.EventID != e.ID {
			t.Fatalf("full re-verification missed the edit: %+v %v", st, err)
		}
	})
}

func TestChainMonitorAnswersWhileALongVerificationRuns(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newFixture(t, db, "slow-county")
		seedEvents(t, db, f.agency.ID, 20, seedStart, time.Hour, genEvent)
		var mu sync.Mutex
		now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		m := NewChainMonitor(NewVerifier(f.store), time.Minute, 10*time.Minute, clock)
		m.Wait = 50 * time.Millisecond
		release := make(chan struct{})
		m.started = func() { <-release }

		// The first view does not wait for the whole chain: it says the
		// check is running, and a second view does not start another.
		for range 2 {
			st, err := m.Status(ctx, f.agency.ID)
			if err != nil || !st.Pending || !st.Verifying || st.Intact || st.Records != 0 {
				t.Fatalf("status while the first verification runs: %+v %v", st, err)
			}
		}
		release <- struct{}{}
		st := waitStatus(t, m, f.agency.ID, func(st ChainStatus) bool { return !st.Verifying })
		if st.Pending || !st.Intact || st.Records != 20 {
			t.Fatalf("status after the verification: %+v", st)
		}

		// A stale result is served, marked Verifying, while the next check runs.
		seedEvents(t, db, f.agency.ID, 3, seedStart.Add(100*time.Hour), time.Hour, genEvent)
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
		st, err := m.Status(ctx, f.agency.ID)
		if err != nil || st.Pending || !st.Verifying || !st.Intact || st.Records != 20 {
			t.Fatalf("stale status while the catch-up runs: %+v %v", st, err)
		}
		release <- struct{}{}
		st = waitStatus(t, m, f.agency.ID, func(st ChainStatus) bool { return !st.Verifying })
		if !st.Intact || st.Records != 23 {
			t.Fatalf("status after the catch-up: %+v", st)
		}
	})
}

// waitStatus polls the monitor until ok accepts its status (the background
// verification has finished), failing after ten seconds.
func waitStatus(t *testing.T, m *ChainMonitor, agencyID int64, ok func(ChainStatus) bool) ChainStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := m.Status(context.Background(), agencyID)
		if err != nil {
			t.Fatal(err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the verification did not finish: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
