package models

import (
	"fmt"
	"strings"
	"time"
)

// This file is the one timestamp codec of the hot queries. Timestamps read
// in bulk (list pages, the session of every request) are selected on
// SQLite as text (CAST(column AS TEXT): an expression has no declared type,
// so the driver leaves it a string) and scanned with scanTime / scanNullTime,
// which parse SQLite's text format directly instead of the driver's trial
// of layouts through time.Parse; on PostgreSQL the same scanners receive
// time.Time values from the driver. The audit export, which writes times as
// text, rewrites the stored text without parsing it (appendTimeText).
// Every fast path here is held to the driver's reading by a test or a fuzz
// target (timetext_test.go, audit_text_internal_test.go).

// timeScanner stores a timestamp column into a time.Time.
type timeScanner struct{ dst *time.Time }

// scanTime returns a Scan destination for a NOT NULL timestamp.
func scanTime(dst *time.Time) timeScanner { return timeScanner{dst} }

func (s timeScanner) Scan(src any) error {
	t, ok, err := timeFromDB(src)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("models: NULL where a time is required")
	}
	*s.dst = t
	return nil
}

// nullTimeScanner stores a nullable timestamp column into a *time.Time.
type nullTimeScanner struct{ dst **time.Time }

// scanNullTime returns a Scan destination for a nullable timestamp.
func scanNullTime(dst **time.Time) nullTimeScanner { return nullTimeScanner{dst} }

func (s nullTimeScanner) Scan(src any) error {
	t, ok, err := timeFromDB(src)
	if err != nil {
		return err
	}
	if !ok {
		*s.dst = nil
		return nil
	}
	v := new(time.Time)
	*v = t
	*s.dst = v
	return nil
}

// timeFromDB converts what a driver returns for a timestamp column; ok is
// false for NULL.
func timeFromDB(src any) (time.Time, bool, error) {
	switch v := src.(type) {
	case nil:
		return time.Time{}, false, nil
	case time.Time:
		return v, true, nil
	case string:
		t, err := parseDBTime(v)
		return t, err == nil, err
	case []byte:
		t, err := parseDBTime(string(v))
		return t, err == nil, err
	}
	return time.Time{}, false, fmt.Errorf("models: cannot read %T as a time", src)
}

// parseDBTime parses a timestamp stored as text, with the result in UTC.
// The usual form, "2006-01-02 15:04:05.999999999-07:00" (or with a T, a Z
// or no zone, which is UTC), is read by hand; anything else as the SQLite
// driver (modernc.org/sqlite, parseTime) reads a DATETIME column: as
// time.Time.String's form, then without a trailing Z with each of
// dbTimeLayouts.
func parseDBTime(s string) (time.Time, error) {
	if t, ok := parseDBTimeFast(s); ok {
		return t, nil
	}
	if t, ok := parseDBTimeAsDriver(s); ok {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("models: cannot parse time %q", s)
}

// parseDBTimeAsDriver reads s exactly as the SQLite driver reads a
// DATETIME column's text ((*conn).parseTime, no _loc), in UTC.
func parseDBTimeAsDriver(s string) (time.Time, bool) {
	str := s
	if x := strings.Index(str, "m="); x > 0 {
		str = str[:x]
	}
	if t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", strings.TrimSpace(str)); err == nil {
		return t.UTC(), true
	}
	ts := strings.TrimSuffix(s, "Z")
	for _, layout := range dbTimeLayouts {
		if t, err := time.Parse(layout, ts); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// dbTimeLayouts are the layouts the SQLite driver reads a DATETIME
// column's text with, in its order; it writes the first.
var dbTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

func parseDBTimeFast(s string) (time.Time, bool) {
	// YYYY-MM-DD?HH:MM:SS
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || day > monthDays(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return time.Time{}, false
		}
		frac, _ := digits(rest[1:n])
		for i := n; i < 10; i++ {
			frac *= 10
		}
		nsec, rest = frac, rest[n:]
	}
	offset := 0
	switch {
	case rest == "" || rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := digits(rest[1:3])
		om, okm := digits(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
	}
	return t, true
}

// digits reads an unsigned decimal number of ASCII digits.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// monthDays is the number of days of a month (1 to 12) of a year.
func monthDays(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// appendTimeText appends the time v in UTC formatted with time.RFC3339Nano:
// v is a time.Time (PostgreSQL) or the text SQLite stores, which is read
// exactly as the SQLite driver reads a DATETIME column (parseDBTimeAsDriver).
// The text the driver itself writes, "2006-01-02 15:04:05.999999999+00:00",
// is rewritten without parsing it into a time.Time.
func appendTimeText(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case time.Time:
		return v.UTC().AppendFormat(dst, time.RFC3339Nano), nil
	case string:
		if out, ok := appendStoredUTC(dst, v); ok {
			return out, nil
		}
		if t, ok := parseDBTimeAsDriver(v); ok {
			return t.AppendFormat(dst, time.RFC3339Nano), nil
		}
	}
	return dst, fmt.Errorf("unsupported Scan, storing driver.Value type %T into type *time.Time", v)
}

// appendStoredUTC rewrites a stored time of the form
// "YYYY-MM-DD HH:MM:SS[.F]+00:00" (or with a 'T' for the space; F is one to
// nine digits) that time.Parse accepts into its time.RFC3339Nano form in
// UTC: the same fields, a 'T', the fraction without trailing zeros and a
// 'Z'. It reports false for any other text, which is then parsed.
func appendStoredUTC(dst []byte, s string) ([]byte, bool) {
	const suffix = "+00:00"
	if len(s) < 19+len(suffix) || s[len(s)-len(suffix):] != suffix {
		return dst, false
	}
	if s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' {
		return dst, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || day > monthDays(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return dst, false
	}
	frac := s[19 : len(s)-len(suffix)]
	if frac != "" {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return dst, false
		}
		if _, ok := digits(frac[1:]); !ok {
			return dst, false
		}
		frac = strings.TrimRight(frac, "0")
		if frac == "." {
			frac = ""
		}
	}
	dst = append(dst, s[:10]...)
	dst = append(dst, 'T')
	dst = append(dst, s[11:19]...)
	dst = append(dst, frac...)
	return append(dst, 'Z'), true
}
