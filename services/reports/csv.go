package reports

import (
	"encoding/csv"
	"io"
	"strconv"
	"time"

	"keyconsole/services/audit"
)

// CSVColumns are the fields of each credential in the CSV report, in order.
func CSVColumns() []string {
	return []string{"type", "id", "name", "reference", "environment", "status", "created_at", "last_rotated_at",
		"last_used_at", "expires_at", "age_days", "due_at", "age_state", "use_state", "compliant"}
}

// csvTime writes a time as RFC 3339 in UTC; no time is an empty cell.
func csvTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// CSVValues returns the CSV cells of a row, before formula neutralisation.
func CSVValues(r Row) []string {
	var due *time.Time
	if !r.DueAt.IsZero() {
		due = &r.DueAt
	}
	return []string{r.Type, strconv.FormatInt(r.ID, 10), r.Name, r.Reference, r.Environment, r.Status, csvTime(&r.CreatedAt),
		csvTime(r.RotatedAt), csvTime(r.LastUsedAt), csvTime(r.ExpiresAt), strconv.Itoa(r.AgeDays), csvTime(due),
		r.AgeState, r.UseState, r.Compliant}
}

// WriteCSV writes the inventory as RFC 4180 CSV with the audit export's
// rules: a UTF-8 byte order mark so Excel reads it as UTF-8, CRLF line ends
// and every cell that a spreadsheet would take for a formula neutralised.
// A block of key/value rows describes the report, an empty line follows,
// then a header row and one row per credential.
func WriteCSV(w io.Writer, inv Inventory, generatedBy string) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	write := func(rec []string) error {
		for i := range rec {
			rec[i] = audit.SafeCell(rec[i])
		}
		return cw.Write(rec)
	}
	sum := inv.Summary.All
	for _, r := range [][]string{
		{"keyconsole credential inventory"},
		{"agency", inv.Agency.Name + " (" + inv.Agency.Slug + ")"},
		{"generated_by", generatedBy},
		{"generated_at", inv.GeneratedAt.UTC().Format(time.RFC3339)},
		{"policy", inv.PolicyText()},
		{"credentials", strconv.Itoa(sum.Total)},
		{"active", strconv.Itoa(sum.Active)},
		{"compliant", strconv.Itoa(sum.Compliant)},
		{"not_compliant", strconv.Itoa(sum.NotCompliant)},
		{},
		append([]string(nil), CSVColumns()...),
	} {
		if err := write(r); err != nil {
			return err
		}
	}
	for _, row := range inv.Rows {
		if err := write(CSVValues(row)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
