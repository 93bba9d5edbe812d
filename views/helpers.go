package views

import (
	"sort"
	"time"
)

func sortedMessages(errs FieldErrors) []string {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, errs[k])
	}
	return out
}

// When formats a time for tables: UTC, to the minute, as
// t.UTC().Format("2006-01-02 15:04 UTC"). The years 0 to 9999 are written
// out without time.Format's reading of its layout: a list page shows a
// hundred and fifty of them.
func When(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		return t.Format("2006-01-02 15:04 UTC")
	}
	hh, mm, _ := t.Clock()
	var b [20]byte
	putDate(b[:10], y, int(m), d)
	b[10], b[13] = ' ', ':'
	put2(b[11:13], hh)
	put2(b[14:16], mm)
	copy(b[16:], " UTC")
	return string(b[:])
}

// WhenPtr formats an optional time, "never" when absent.
func WhenPtr(t *time.Time, none string) string {
	if t == nil || t.IsZero() {
		return none
	}
	return When(*t)
}

// Day formats a date, as t.UTC().Format("2006-01-02"), written out like When.
func Day(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		return t.Format("2006-01-02")
	}
	var b [10]byte
	putDate(b[:], y, int(m), d)
	return string(b[:])
}

// putDate writes YYYY-MM-DD into b[:10].
func putDate(b []byte, y, m, d int) {
	put2(b[0:2], y/100)
	put2(b[2:4], y%100)
	b[4], b[7] = '-', '-'
	put2(b[5:7], m)
	put2(b[8:10], d)
}

func put2(b []byte, n int) { b[0], b[1] = byte('0'+n/10), byte('0'+n%10) }
