package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"strconv"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// refCSVRecord is a record as encoding/csv writes it with the formula
// neutralisation, which the export's own CSV writer must match byte for byte.
func refCSVRecord(rec []string) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	cells := make([]string, len(rec))
	for i := range rec {
		cells[i] = safeCell(rec[i])
	}
	_ = w.Write(cells)
	w.Flush()
	return buf.Bytes()
}

// FuzzCSVCellMatchesEncodingCSV holds appendRecord to encoding/csv's
// output for any cells.
func FuzzCSVCellMatchesEncodingCSV(f *testing.F) {
	for _, s := range []string{"", "plain", "=1+1", "a,b", "\"q\"", "line\nbreak", "\rreturn", "\r\n", " lead", "\u00a0nbsp",
		"\u2028", "\\.", "\\", "\\.x", "-", "@", "\t\"", "Zoë", "\xff\xfe", "'quoted", "\u0085x", "a\rb"} {
		f.Add(s, "x")
		f.Add("x", s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, rec := range [][]string{{a}, {a, b}, {b, "", a}} {
			want := refCSVRecord(rec)
			if got := appendRecord(nil, rec); !bytes.Equal(got, want) {
				t.Fatalf("appendRecord(%q) = %q, want %q", rec, got, want)
			}
			if got := appendCell(nil, []byte(rec[0])); !bytes.Equal(append(got, '\r', '\n'), refCSVRecord(rec[:1])) {
				t.Fatalf("appendCell([]byte(%q)) = %q, want %q", rec[0], got, refCSVRecord(rec[:1]))
			}
		}
	})
}

// refCSVExport writes ex as the CSV export did with encoding/csv and events
// read through Ascending, which the export must match byte for byte.
func refCSVExport(t *testing.T, ex *Export) []byte {
	t.Helper()
	var out bytes.Buffer
	out.WriteString("\ufeff")
	w := csv.NewWriter(&out)
	w.UseCRLF = true
	write := func(rec []string) {
		for i := range rec {
			rec[i] = safeCell(rec[i])
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	m := ex.meta()
	for _, r := range [][]string{
		{"keyconsole audit export"},
		{"agency", m.Agency},
		{"range", m.Range},
		{"filters", m.Filters},
		{"records", strconv.FormatInt(m.Records, 10)},
		{"chain_head_seq", strconv.FormatInt(m.HeadSeq, 10)},
		{"chain_head_hash", m.HeadHash},
		{"generated_by", m.GeneratedBy},
		{"generated_at", m.GeneratedAt.Format(time.RFC3339)},
		{},
		append([]string(nil), Columns()...),
	} {
		write(r)
	}
	f := ex.bound
	var batch []models.AuditEvent
	var rec []string
	for !ex.empty {
		var err error
		if batch, err = ex.x.store.Ascending(context.Background(), f, 1000); err != nil {
			t.Fatal(err)
		}
		for i := range batch {
			rec = columnValues(&batch[i], rec)
			write(rec)
		}
		if len(batch) < 1000 {
			break
		}
		f.AfterID = batch[len(batch)-1].ID
	}
	w.Flush()
	return out.Bytes()
}

// TestCSVExportMatchesEncodingCSV exports filtered and unfiltered views of
// a generated log (formula-shaped, quoted, multi-line and non-ASCII cells,
// times with and without fractions) across batch boundaries, and expects
// exactly the bytes encoding/csv writes for the events Ascending reads.
func TestCSVExportMatchesEncodingCSV(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db, "csv-county")
		seedEvents(t, db, f.agency.ID, 5000, seedStart, 1500*time.Millisecond+137*time.Microsecond, func(i int, e *models.AuditEvent) {
			genEvent(i, e)
			if i%7 == 0 {
				e.OccurredAt = e.OccurredAt.Truncate(time.Second)
			}
			if i%11 == 0 {
				e.TargetName = " leading space, \"quoted\"\r\n" + e.TargetName
				e.Details = `\.`
			}
		})
		other := newFixture(t, db, "other-county")
		seedEvents(t, db, other.agency.ID, 300, seedStart, time.Minute, genEvent)
		for _, q := range []mapGetter{
			{},
			{"from": "2025-01-01T00:30", "to": "2025-01-01T01:10", "actor": "@SUM(1+1)"},
			{"action": "api_credential.", "outcome": "failure"},
			{"target": "cred-5"},
			{"from": "2030-01-01"},
		} {
			flt, err := ParseFilter(q.get)
			if err != nil {
				t.Fatal(err)
			}
			for _, batch := range []int{1000, 7} {
				x := NewExporter(f.store, f.rec, func() time.Time { return f.now })
				x.batch = batch
				ex, err := x.Start(context.Background(), ExportRequest{Agency: f.agency, Filter: flt, Format: FormatCSV,
					Actor: Actor{Type: ActorUser, ID: "7", Name: "=Rita, \"Reviewer\""}})
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				bw := bufio.NewWriterSize(&buf, 100)
				n, err := ex.WriteTo(context.Background(), bw)
				if err != nil {
					t.Fatal(err)
				}
				_ = bw.Flush()
				if n != ex.Records {
					t.Fatalf("%v: wrote %d records, counted %d", q, n, ex.Records)
				}
				if want := refCSVExport(t, ex); !bytes.Equal(buf.Bytes(), want) {
					t.Fatalf("%v, batch %d: export (%d bytes) differs from encoding/csv (%d bytes)", q, batch, buf.Len(), len(want))
				}
				t.Logf("%v, batch %d: %d records, %d bytes", q, batch, n, buf.Len())
			}
		}
	})
}
