package audit

import (
	"bufio"
	"context"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"keyconsole/models"
)

// The CSV export writes its cells with appendCell instead of encoding/csv:
// encoding/csv takes a []string per record, so every number and time would
// be made a string first, and it looks at each field twice (whether it
// needs quotes, then to write it) through a bufio.Writer call per piece.
// appendCell writes the same bytes as csv.Writer{UseCRLF: true} writing
// safeCell(s), straight into a byte slice, with one pass over a cell that
// needs no quotes (almost every cell). FuzzCSVCellMatchesEncodingCSV holds
// it to encoding/csv's output.

// csvSpecial marks the bytes that make encoding/csv quote a field: the
// delimiter, a double quote, CR and LF.
var csvSpecial = [256]bool{',': true, '"': true, '\r': true, '\n': true}

// appendCell appends one cell, its formula neutralised as safeCell does and
// quoted and escaped as csv.Writer with UseCRLF does.
func appendCell[S ~string | ~[]byte](dst []byte, s S) []byte {
	if len(s) == 0 {
		return dst
	}
	quote := indexSpecial(s, 0) >= 0
	prefix := false
	switch c := s[0]; c {
	case '=', '+', '-', '@', '\t', '\r':
		// The neutralising quote comes first, so the field's first rune
		// is never a space.
		prefix = true
	case '\\':
		// encoding/csv quotes the field `\.` (an end-of-data marker to
		// PostgreSQL's COPY).
		quote = quote || (len(s) == 2 && s[1] == '.')
	default:
		if !quote {
			if c < utf8.RuneSelf {
				quote = asciiSpace[c]
			} else {
				var b [utf8.UTFMax]byte
				n := copy(b[:], s)
				r, _ := utf8.DecodeRune(b[:n])
				quote = unicode.IsSpace(r)
			}
		}
	}
	if !quote {
		if prefix {
			dst = append(dst, '\'')
		}
		return append(dst, s...)
	}
	dst = append(dst, '"')
	if prefix {
		dst = append(dst, '\'')
	}
	start := 0
	for i := indexSpecial(s, 0); i >= 0; i = indexSpecial(s, i+1) {
		var esc string
		switch s[i] {
		case '"':
			esc = `""`
		case '\r':
			// csv.Writer with UseCRLF drops a CR; an LF becomes CR LF.
			esc = ""
		case '\n':
			esc = "\r\n"
		default:
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, esc...)
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// indexSpecial is the index of the first byte of s at or after i that
// csvSpecial marks, or -1. (Testing eight bytes at a time was no faster:
// most cells are short.)
func indexSpecial[S ~string | ~[]byte](s S, i int) int {
	for ; i < len(s); i++ {
		if csvSpecial[s[i]] {
			return i
		}
	}
	return -1
}

// asciiSpace marks the ASCII bytes unicode.IsSpace reports.
var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// appendRecord appends cells as one CSV record ending in CR LF.
func appendRecord(dst []byte, cells []string) []byte {
	for i, c := range cells {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCell(dst, c)
	}
	return append(dst, '\r', '\n')
}

// csvExporter writes RFC 4180 CSV (CRLF line ends) with a UTF-8 byte order
// mark so Excel reads it as UTF-8: a block of key/value rows describing the
// export, an empty line, then a header row and one row per record. The
// records are read as text (AuditStore.AscendingText), never as events,
// and their cells written by appendCell (see export_csv.go).
type csvExporter struct {
	bw  *bufio.Writer
	buf []byte
}

func newCSVExporter(bw *bufio.Writer) *csvExporter { return &csvExporter{bw: bw} }

func (s *csvExporter) write(rec []string) error {
	s.buf = appendRecord(s.buf[:0], rec)
	_, err := s.bw.Write(s.buf)
	return err
}

func (s *csvExporter) begin(m exportMeta) error {
	if _, err := s.bw.WriteString("\ufeff"); err != nil {
		return err
	}
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
		Columns(),
	} {
		if err := s.write(r); err != nil {
			return err
		}
	}
	return nil
}

// appendText appends the record e, as the store read it as text, to the
// batch in s.buf: the cells of columnValues for the event.
func (s *csvExporter) appendText(e *models.AuditText) error {
	var num [20]byte
	b := appendCell(s.buf, strconv.AppendInt(num[:0], e.ID, 10))
	b = append(b, ',')
	b = appendCell(b, strconv.AppendInt(num[:0], e.Seq, 10))
	b = append(b, ',')
	b = appendCell(b, e.OccurredAt)
	for _, c := range [...]string{e.ActorType, e.ActorID, e.ActorName, e.Action, e.TargetType, e.TargetID, e.TargetName,
		e.Outcome, e.Reason, e.SourceIP, e.UserAgent, e.RequestID, e.Details, e.PrevHash, e.Hash} {
		b = append(b, ',')
		b = appendCell(b, c)
	}
	s.buf = append(b, '\r', '\n')
	return nil
}

// batch reads the next batch of records after f.AfterID as text into
// s.buf, then writes it to bw, so the query is not kept open while a slow
// client takes the bytes. It returns how many records it wrote and the id
// of the last.
func (s *csvExporter) batch(ctx context.Context, store *models.AuditStore, f models.AuditFilter, limit int) (int, int64, error) {
	s.buf = s.buf[:0]
	n, last, err := store.AscendingText(ctx, f, limit, s.appendText)
	if err != nil {
		return 0, 0, err
	}
	_, err = s.bw.Write(s.buf)
	return n, last, err
}

func (s *csvExporter) end(int64) error { return nil }
