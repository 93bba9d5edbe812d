package audit

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"keyconsole/models"
)

// exportBenchEvents is the size of the chain BenchmarkExportCSV exports.
const exportBenchEvents = 200_000

// exportBenchFixture opens a SQLite database holding one agency with
// exportBenchEvents generated events. The database is seeded once and kept
// in the temporary directory for later runs.
func exportBenchFixture(b *testing.B) fixture {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("keyconsole-export-bench-%d.db", exportBenchEvents))
	if _, err := os.Stat(path); err != nil {
		seeding := path + ".seeding"
		_ = os.Remove(seeding)
		db, err := models.Open(ctx, models.DBConfig{URL: seeding})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		f := newFixture(b, db, "export-bench")
		start := time.Now()
		seedEvents(b, db, f.agency.ID, exportBenchEvents, seedStart, 30*time.Second, genEvent)
		b.Logf("seeded %d events in %s", exportBenchEvents, time.Since(start).Round(time.Millisecond))
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(seeding, path); err != nil {
			b.Fatal(err)
		}
	}
	db, err := models.Open(ctx, models.DBConfig{URL: path})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	ag, err := models.NewAgencyStore(db).BySlug(ctx, "export-bench")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	store := models.NewAuditStore(db)
	return fixture{db: db, store: store, rec: NewRecorder(db, store, func() time.Time { return now }), agency: ag, now: now}
}

// BenchmarkExportCSV measures the CSV export of a 200,000-event chain on
// SQLite (Start, which counts and records it, and WriteTo) in rows/s.
func BenchmarkExportCSV(b *testing.B) {
	f := exportBenchFixture(b)
	ctx := context.Background()
	x := NewExporter(f.store, f.rec, func() time.Time { return f.now })
	var rows int64
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		ex, err := x.Start(ctx, ExportRequest{Agency: f.agency, Format: FormatCSV, Actor: Actor{Type: ActorSystem, ID: "bench"}})
		if err != nil {
			b.Fatal(err)
		}
		n, err := ex.WriteTo(ctx, &countWriter{})
		if err != nil {
			b.Fatal(err)
		}
		rows += n
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(rows)/(cpuSeconds()-cpu0), "rows/cpu-s")
}

// cpuSeconds is the process's user and system CPU time: a rate over it is
// steadier than one over wall time on a busy machine.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkExportScanFloor reads the export's rows through database/sql
// alone (no GORM, CSV or batches), as bench's driver floor does: the most
// an export through the driver can reach.
func BenchmarkExportScanFloor(b *testing.B) {
	f := exportBenchFixture(b)
	ctx := context.Background()
	q := "SELECT " + strings.Join(Columns(), ", ") + " FROM audit_events WHERE agency_id = ? ORDER BY id"
	vals := make([]sql.RawBytes, len(Columns()))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		rows, err := f.db.SQL().QueryContext(ctx, q, f.agency.ID)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(n)/(cpuSeconds()-cpu0), "rows/cpu-s")
}

// BenchmarkCSVAppendText measures the CSV writer alone over generated
// records as the store delivers them.
func BenchmarkCSVAppendText(b *testing.B) {
	var evs []models.AuditText
	for i := range 1000 {
		var e models.AuditEvent
		genEvent(i, &e)
		e.ID, e.Seq, e.PrevHash, e.Hash = int64(i+1), int64(i+1), strings.Repeat("9c2d4519", 8), strings.Repeat("60decb73", 8)
		evs = append(evs, models.AuditText{ID: e.ID, Seq: e.Seq, OccurredAt: []byte("2026-02-21T10:24:39.784625Z"), ActorType: e.ActorType,
			ActorID: e.ActorID, ActorName: e.ActorName, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID,
			TargetName: e.TargetName, Outcome: e.Outcome, Reason: e.Reason, SourceIP: e.SourceIP, UserAgent: e.UserAgent,
			RequestID: e.RequestID, Details: e.Details, PrevHash: e.PrevHash, Hash: e.Hash})
	}
	s := newCSVExporter(nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.buf = s.buf[:0]
		for j := range evs {
			_ = s.appendText(&evs[j])
		}
	}
	b.SetBytes(int64(len(s.buf)))
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "rows/s")
}
