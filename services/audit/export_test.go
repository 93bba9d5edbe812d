package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

var seedStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type fixture struct {
	db     *models.DB
	store  *models.AuditStore
	rec    *Recorder
	agency models.Agency
	now    time.Time
}

func newFixture(t testing.TB, db *models.DB, slug string) fixture {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	a := models.Agency{Slug: slug, Name: "Agency " + slug, CreatedAt: now, UpdatedAt: now}
	if err := models.NewAgencyStore(db).Create(ctx, &a); err != nil {
		t.Fatal(err)
	}
	store := models.NewAuditStore(db)
	return fixture{db: db, store: store, rec: NewRecorder(db, store, func() time.Time { return now }), agency: a, now: now}
}

// expectedEvents lists, in id order, the stored events the predicate keeps.
func expectedEvents(t testing.TB, f fixture, keep func(e *models.AuditEvent) bool) []models.AuditEvent {
	t.Helper()
	var out []models.AuditEvent
	flt := models.AuditFilter{AgencyID: f.agency.ID}
	for {
		batch, err := f.store.Ascending(context.Background(), flt, 5000)
		if err != nil {
			t.Fatal(err)
		}
		for i := range batch {
			if keep(&batch[i]) {
				out = append(out, batch[i])
			}
		}
		if len(batch) < 5000 {
			return out
		}
		flt.AfterID = batch[len(batch)-1].ID
	}
}

// exportTestBatch is the exporter's batch size in these tests: small and
// odd, so record counts rarely fall on a batch boundary.
const exportTestBatch = 67

func exportTo(t testing.TB, f fixture, flt Filter, format Format) ([]byte, *Export) {
	t.Helper()
	x := NewExporter(f.store, f.rec, func() time.Time { return f.now })
	x.batch = exportTestBatch
	ex, err := x.Start(context.Background(), ExportRequest{
		Agency: f.agency, Filter: flt, Format: format, Actor: Actor{Type: ActorUser, ID: "7", Name: "Rita Reviewer"},
		Origin: Origin{SourceIP: "127.0.0.1", RequestID: "test"},
	})
	if err != nil {
		t.Fatalf("start %s export: %v", format, err)
	}
	var buf bytes.Buffer
	n, err := ex.WriteTo(context.Background(), &buf)
	if err != nil {
		t.Fatalf("write %s export: %v", format, err)
	}
	if n != ex.Records {
		t.Fatalf("%s export wrote %d records, counted %d", format, n, ex.Records)
	}
	return buf.Bytes(), ex
}

func TestExportHoldsExactlyTheFilteredRecords(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext is required to check PDF exports: install poppler-utils (apt-get install -y poppler-utils)")
	}
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		f := newFixture(t, db, "big-county")
		// 6,000 records over ten weeks; the exporter reads them in batches
		// of exportTestBatch, so the filtered view spans many batches (the
		// export of 100,000 records is measured by `make bench`).
		const n = 6_000
		start := time.Now()
		seedEvents(t, db, f.agency.ID, n, seedStart, 17*time.Minute, genEvent)
		// Another agency's records must never appear.
		other := newFixture(t, db, "other-county")
		seedEvents(t, db, other.agency.ID, 500, seedStart, time.Minute, genEvent)
		t.Logf("seeded %d events in %s", n, time.Since(start).Round(time.Millisecond))

		flt, err := ParseFilter(mapGetter{
			"from": "2025-01-10", "to": "2025-02-20T12:00", "action": "api_credential.", "outcome": "success",
		}.get)
		if err != nil {
			t.Fatal(err)
		}
		want := expectedEvents(t, f, func(e *models.AuditEvent) bool {
			return !e.OccurredAt.Before(time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)) &&
				e.OccurredAt.Before(time.Date(2025, 2, 20, 12, 1, 0, 0, time.UTC)) &&
				strings.HasPrefix(e.Action, "api_credential.") && e.Outcome == OutcomeSuccess
		})
		if len(want) < 4*exportTestBatch {
			t.Fatalf("the filter keeps only %d records; the test needs a view of several batches", len(want))
		}
		// Each export is taken at the head before its own audit record.
		headNow := func(t *testing.T) models.AuditHead {
			h, err := f.store.Head(context.Background(), f.agency.ID)
			if err != nil {
				t.Fatal(err)
			}
			return h
		}

		t.Run("csv", func(t *testing.T) {
			head := headNow(t)
			out, ex := exportTo(t, f, flt, FormatCSV)
			checkCSV(t, out, want, head, ex)
		})
		t.Run("jsonl", func(t *testing.T) {
			head := headNow(t)
			out, _ := exportTo(t, f, flt, FormatJSONL)
			checkJSONL(t, out, want, head)
		})
		t.Run("pdf", func(t *testing.T) {
			head := headNow(t)
			out, _ := exportTo(t, f, flt, FormatPDF)
			checkPDF(t, out, want, head)
		})
		t.Run("each export is audited", func(t *testing.T) {
			evs, err := f.store.Page(context.Background(), models.AuditFilter{AgencyID: f.agency.ID, Action: ActionAuditExport}, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 3 {
				t.Fatalf("%d audit.export records, want 3", len(evs))
			}
			for i, format := range []string{"pdf", "jsonl", "csv"} {
				d := map[string]string{}
				for _, kv := range DecodeDetails(evs[i].Details) {
					d[kv[0]] = kv[1]
				}
				if d["format"] != format || d["record_count"] != strconv.Itoa(len(want)) || d["filters"] != flt.Values().Encode() {
					t.Errorf("export record %d details = %v", i, d)
				}
				if evs[i].ActorName != "Rita Reviewer" || evs[i].Outcome != OutcomeSuccess {
					t.Errorf("export record %d: actor %q outcome %q", i, evs[i].ActorName, evs[i].Outcome)
				}
			}
		})
		t.Run("chain still verifies", func(t *testing.T) {
			rep, err := NewVerifier(f.store).Verify(context.Background(), f.agency.ID)
			if err != nil || !rep.Intact || rep.Records != n+3 {
				t.Fatalf("verify: %+v %v", rep, err)
			}
		})
	})
}

func checkCSV(t *testing.T, out []byte, want []models.AuditEvent, head models.AuditHead, ex *Export) {
	t.Helper()
	if !bytes.HasPrefix(out, []byte("\xef\xbb\xbf")) {
		t.Fatal("CSV does not start with a UTF-8 byte order mark")
	}
	r := csv.NewReader(bytes.NewReader(out[3:]))
	r.FieldsPerRecord = -1
	meta := map[string]string{}
	for {
		rec, err := r.Read()
		if err != nil {
			t.Fatalf("CSV header not found: %v", err)
		}
		if len(rec) == 2 {
			meta[rec[0]] = rec[1]
		}
		if strings.Join(rec, ",") == strings.Join(Columns(), ",") {
			break
		}
	}
	if meta["records"] != strconv.Itoa(len(want)) || meta["chain_head_hash"] != head.Hash || meta["chain_head_seq"] != strconv.FormatInt(head.Seq, 10) {
		t.Errorf("CSV summary = %v", meta)
	}
	if meta["filters"] != "action=api_credential., outcome=success" || !strings.HasPrefix(meta["range"], "from 2025-01-10 00:00:00 UTC") {
		t.Errorf("CSV range/filters = %q / %q", meta["range"], meta["filters"])
	}
	var i int
	var vals []string
	for ; ; i++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(want) {
			t.Fatalf("CSV has more rows than the %d expected", len(want))
		}
		vals = columnValues(&want[i], vals)
		for j := range vals {
			if rec[j] != safeCell(vals[j]) {
				t.Fatalf("CSV row %d column %s = %q, want %q", i, Columns()[j], rec[j], safeCell(vals[j]))
			}
		}
		for j, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Fatalf("CSV row %d column %s starts with a formula character: %q", i, Columns()[j], cell)
			}
		}
	}
	if i != len(want) || ex.Records != int64(len(want)) {
		t.Fatalf("CSV has %d rows (counted %d), want %d", i, ex.Records, len(want))
	}
}

func checkJSONL(t *testing.T, out []byte, want []models.AuditEvent, head models.AuditHead) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	if !sc.Scan() {
		t.Fatal("empty JSON Lines export")
	}
	var hdr JSONHeader
	if err := json.Unmarshal(sc.Bytes(), &hdr); err != nil || hdr.Type != "export" {
		t.Fatalf("JSON Lines header %q: %v", sc.Text(), err)
	}
	if hdr.RecordCount != int64(len(want)) || hdr.ChainHeadHash != head.Hash || hdr.ChainHeadSeq != head.Seq {
		t.Errorf("JSON Lines header = %+v", hdr)
	}
	i := 0
	var trailer JSONTrailer
	for sc.Scan() {
		var line JSONLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %d: %v", i+2, err)
		}
		if line.Type == "end" {
			_ = json.Unmarshal(sc.Bytes(), &trailer)
			if sc.Scan() {
				t.Fatal("lines after the trailer")
			}
			break
		}
		if i >= len(want) {
			t.Fatalf("JSON Lines has more records than the %d expected", len(want))
		}
		w := want[i]
		at, err := time.Parse(TimeLayout, line.OccurredAt)
		if err != nil {
			t.Fatal(err)
		}
		got := models.AuditEvent{ID: line.ID, AgencyID: w.AgencyID, Seq: line.Seq, OccurredAt: at, ActorType: line.ActorType, ActorID: line.ActorID,
			ActorName: line.ActorName, Action: line.Action, TargetType: line.TargetType, TargetID: line.TargetID, TargetName: line.TargetName,
			Outcome: line.Outcome, Reason: line.Reason, SourceIP: line.SourceIP, UserAgent: line.UserAgent, RequestID: line.RequestID,
			Details: line.Details, PrevHash: line.PrevHash, Hash: line.Hash}
		if !got.OccurredAt.Equal(w.OccurredAt) {
			t.Fatalf("record %d time %v, want %v", i, got.OccurredAt, w.OccurredAt)
		}
		got.OccurredAt = w.OccurredAt
		if got != w {
			t.Fatalf("record %d = %+v, want %+v", i, got, w)
		}
		if Hash(&got) != line.Hash {
			t.Fatalf("record %d: hash cannot be recomputed from the export", i)
		}
		i++
	}
	if i != len(want) || trailer.Records != int64(len(want)) {
		t.Fatalf("JSON Lines holds %d records (trailer %d), want %d", i, trailer.Records, len(want))
	}
}

var pdfRow = regexp.MustCompile(`^\s*(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\s+(\d+)\s`)

func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "export.pdf")
	if err := os.WriteFile(p, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", p, "-").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("pdftotext: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

func checkPDF(t *testing.T, pdf []byte, want []models.AuditEvent, head models.AuditHead) {
	t.Helper()
	text := pdfText(t, pdf)
	pages := 1 + (len(want)+pdfRowsPerPage-1)/pdfRowsPerPage
	for _, s := range []string{
		"keyconsole audit log export",
		"Records:         " + strconv.Itoa(len(want)),
		"Chain head hash: " + head.Hash,
		"Filters:         action=api_credential., outcome=success",
		"Generated by:    Rita Reviewer",
		"page 1 of " + strconv.Itoa(pages),
		"page " + strconv.Itoa(pages) + " of " + strconv.Itoa(pages),
		"End of export: " + strconv.Itoa(len(want)) + " records.",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("PDF text lacks %q", s)
		}
	}
	if strings.Contains(text, "page "+strconv.Itoa(pages+1)) {
		t.Errorf("PDF has more than %d pages", pages)
	}
	seen := map[string]int{}
	rows := 0
	for _, line := range strings.Split(text, "\n") {
		m := pdfRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rows++
		seen[m[1]+" "+m[2]]++
	}
	if rows != len(want) {
		t.Fatalf("PDF table has %d rows, want %d", rows, len(want))
	}
	for _, e := range want {
		key := e.OccurredAt.UTC().Format("2006-01-02 15:04:05") + " " + strconv.FormatInt(e.Seq, 10)
		if seen[key] != 1 {
			t.Fatalf("PDF shows record seq %d %d times", e.Seq, seen[key])
		}
	}
}

func (m mapGetter) get(k string) string { return m[k] }

type mapGetter map[string]string

func TestSafeCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"=1+1", "'=1+1"},
		{"+15550100", "'+15550100"},
		{"-2", "'-2"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tcmd", "'\tcmd"},
		{"\rcmd", "'\rcmd"},
		{"a=1", "a=1"},
		{" =1", " =1"},
		{"'quoted", "'quoted"},
		{"Zoë", "Zoë"},
	} {
		if got := safeCell(tc.in); got != tc.want {
			t.Errorf("safeCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
