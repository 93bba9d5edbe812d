package audit

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"keyconsole/models"
)

// csvReadBack is what a CSV reader returns for a field the export wrote:
// encoding/csv's writer drops a carriage return that does not end a line
// break, and readers turn a CR LF inside a quoted field into LF.
func csvReadBack(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "")
}

// FuzzCSVCell writes an audit record whose text fields hold arbitrary input
// through the CSV export's writer and reads the file back with a CSV
// parser: the record stays one row of len(Columns) cells (no input splits
// or joins cells or rows), no cell starts with a character a spreadsheet
// evaluates (= + - @ tab CR), and every cell reads back as its input with
// at most the neutralising quote added. The seed corpus is in
// testdata/fuzz/FuzzCSVCell.
func FuzzCSVCell(f *testing.F) {
	f.Fuzz(func(t *testing.T, actor, target, reason string) {
		e := &models.AuditEvent{ID: 1, Seq: 1, ActorType: "user", ActorID: "1", ActorName: actor, Action: "api_credential.create",
			TargetType: "api_credential", TargetID: target, TargetName: target, Outcome: "success", Reason: reason,
			SourceIP: "127.0.0.1", UserAgent: actor, RequestID: "r", Details: reason, PrevHash: "p", Hash: "h"}
		want := columnValues(e, nil)
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		s := newCSVExporter(bw)
		text := models.AuditText{ID: e.ID, Seq: e.Seq, OccurredAt: []byte(want[2]), ActorType: e.ActorType, ActorID: e.ActorID,
			ActorName: e.ActorName, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID, TargetName: e.TargetName,
			Outcome: e.Outcome, Reason: e.Reason, SourceIP: e.SourceIP, UserAgent: e.UserAgent, RequestID: e.RequestID,
			Details: e.Details, PrevHash: e.PrevHash, Hash: e.Hash}
		if err := s.appendText(&text); err != nil {
			t.Fatal(err)
		}
		if _, err := bw.Write(s.buf); err != nil {
			t.Fatal(err)
		}
		if err := s.end(1); err != nil {
			t.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		r := csv.NewReader(bytes.NewReader(buf.Bytes()))
		r.FieldsPerRecord = -1
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatalf("the export is not valid CSV: %v\n%q", err, buf.String())
		}
		if len(recs) != 1 || len(recs[0]) != len(Columns()) {
			t.Fatalf("one record became %d rows (first of %d cells), want 1 row of %d\n%q", len(recs), len(recs[0]), len(Columns()), buf.String())
		}
		for i, cell := range recs[0] {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Fatalf("column %s reads back as %q: a spreadsheet would evaluate it", Columns()[i], cell)
			}
			in := csvReadBack(want[i])
			if cell != in && cell != "'"+in {
				t.Fatalf("column %s reads back as %q, written %q", Columns()[i], cell, want[i])
			}
		}
	})
}
