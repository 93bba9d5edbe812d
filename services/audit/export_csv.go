package audit

import (
	"unicode"
	"unicode/utf8"
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
