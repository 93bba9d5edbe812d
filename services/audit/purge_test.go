package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

func TestPurgeKeepsTheChainVerifiable(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newFixture(t, db, "purge-county")
		// One event a day from 2024-01-01 through 2026-05-31; now is 2026-06-01.
		start := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
		days := int(f.now.Sub(start).Hours() / 24)
		seedEvents(t, db, f.agency.ID, days, start, 24*time.Hour, genEvent)
		clock := func() time.Time { return f.now }
		p := NewPurger(db, f.store, f.rec, 366*24*time.Hour, clock)
		v := NewVerifier(f.store)
		admin := Actor{Type: ActorSystem, ID: "cli", Name: "cli:root"}
		count := func() int64 {
			n, err := f.store.Count(ctx, models.AuditFilter{AgencyID: f.agency.ID})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		verify := func(wantRecords int64) Report {
			t.Helper()
			rep, err := v.Verify(ctx, f.agency.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Intact || rep.Records != wantRecords {
				t.Fatalf("after purge: %+v (break %+v), want intact with %d records", rep, rep.Break, wantRecords)
			}
			return rep
		}

		t.Run("refuses dates inside retention", func(t *testing.T) {
			for _, d := range []time.Time{f.now, f.now.Add(-365 * 24 * time.Hour), time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)} {
				if _, err := p.Purge(ctx, f.agency.ID, d, admin, Origin{}); !errors.Is(err, ErrWithinRetention) {
					t.Errorf("purge before %s: %v, want ErrWithinRetention", d, err)
				}
			}
			if count() != int64(days) {
				t.Fatalf("a refused purge removed records: %d left of %d", count(), days)
			}
		})

		var firstAnchor models.AuditEvent
		t.Run("first purge", func(t *testing.T) {
			before := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			plan, err := p.Plan(ctx, f.agency.ID, before)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Records != 366 || plan.FirstSeq != 1 || plan.ThroughSeq != 366 {
				t.Fatalf("plan = %+v, want 366 records (all of 2024)", plan)
			}
			if count() != int64(days) {
				t.Fatal("planning removed records")
			}
			res, err := p.Purge(ctx, f.agency.ID, before, admin, Origin{RequestID: "cli"})
			if err != nil {
				t.Fatal(err)
			}
			firstAnchor = res.Anchor
			if res.Records != 366 || res.Anchor.Seq != 366 || res.Anchor.Action != ActionPurgeAnchor {
				t.Fatalf("purge = %+v", res)
			}
			// remaining records + anchor + purge record
			rep := verify(int64(days-366) + 2)
			if !rep.Anchored || rep.HeadSeq != int64(days)+1 {
				t.Fatalf("report = %+v", rep)
			}
			old, err := f.store.Count(ctx, models.AuditFilter{AgencyID: f.agency.ID, To: &before})
			if err != nil || old != 0 {
				t.Fatalf("%d records before the date remain (%v)", old, err)
			}
			last, err := f.store.Page(ctx, models.AuditFilter{AgencyID: f.agency.ID}, 1)
			if err != nil {
				t.Fatal(err)
			}
			d := map[string]string{}
			for _, kv := range DecodeDetails(last[0].Details) {
				d[kv[0]] = kv[1]
			}
			if last[0].Action != ActionAuditPurge || last[0].ActorName != "cli:root" || d["purged_records"] != "366" ||
				d["anchor_seq"] != "366" || d["anchor_hash"] != res.Anchor.Hash {
				t.Fatalf("purge record = %+v %v", last[0], d)
			}
		})

		t.Run("nothing older", func(t *testing.T) {
			if _, err := p.Purge(ctx, f.agency.ID, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), admin, Origin{}); !errors.Is(err, ErrNothingToPurge) {
				t.Fatalf("purge again: %v, want ErrNothingToPurge", err)
			}
		})

		t.Run("second purge removes the first anchor", func(t *testing.T) {
			before := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
			res, err := p.Purge(ctx, f.agency.ID, before, admin, Origin{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != 59 || res.Anchor.Seq != 366+59 {
				t.Fatalf("second purge = %+v", res)
			}
			if _, err := f.store.ByID(ctx, f.agency.ID, firstAnchor.ID); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("the first anchor survived the second purge: %v", err)
			}
			verify(int64(days-366-59) + 2 + 1)
		})

		t.Run("a modified anchor is detected", func(t *testing.T) {
			first, err := f.store.FirstInChain(ctx, f.agency.ID)
			if err != nil {
				t.Fatal(err)
			}
			exec1(t, db, "UPDATE audit_events SET details = '{}' WHERE id = ?", first.ID)
			rep, err := v.Verify(ctx, f.agency.ID)
			if err != nil || rep.Intact || rep.Break.EventID != first.ID {
				t.Fatalf("verify = %+v %v, want a break at the anchor %d", rep, err, first.ID)
			}
			if _, err := p.Purge(ctx, f.agency.ID, time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC), admin, Origin{}); !errors.Is(err, ErrChainBroken) {
				t.Fatalf("purge of a broken chain: %v, want ErrChainBroken", err)
			}
			exec1(t, db, "UPDATE audit_events SET details = ? WHERE id = ?", first.Details, first.ID)
			verify(int64(days-366-59) + 3)
		})
	})
}

func TestPurgeOfEveryRecord(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		f := newFixture(t, db, "all-gone")
		seedEvents(t, db, f.agency.ID, 30, time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour, genEvent)
		p := NewPurger(db, f.store, f.rec, 366*24*time.Hour, func() time.Time { return f.now })
		res, err := p.Purge(ctx, f.agency.ID, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Actor{Type: ActorSystem, ID: "cli"}, Origin{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Records != 30 || res.Anchor.Seq != 30 {
			t.Fatalf("purge = %+v", res)
		}
		rep, err := NewVerifier(f.store).Verify(ctx, f.agency.ID)
		if err != nil || !rep.Intact || rep.Records != 2 || rep.HeadSeq != 31 {
			t.Fatalf("verify = %+v %v", rep, err)
		}
		// The chain goes on from there.
		if err := f.rec.Record(ctx, Event{AgencyID: f.agency.ID, Actor: Actor{Type: ActorUser, ID: "1"}, Action: "auth.sign_in", Outcome: OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
		rep, err = NewVerifier(f.store).Verify(ctx, f.agency.ID)
		if err != nil || !rep.Intact || rep.Records != 3 || rep.HeadSeq != 32 {
			t.Fatalf("verify after a new record = %+v %v", rep, err)
		}
	})
}
