package pdfdoc

import (
	"strings"
	"unicode/utf8"
)

// winAnsiExtra maps the characters WinAnsiEncoding places in 0x80-0x9F.
var winAnsiExtra = map[rune]byte{
	'€': 0x80, '‚': 0x82, 'ƒ': 0x83, '„': 0x84, '…': 0x85, '†': 0x86, '‡': 0x87, 'ˆ': 0x88, '‰': 0x89, 'Š': 0x8A,
	'‹': 0x8B, 'Œ': 0x8C, 'Ž': 0x8E, '‘': 0x91, '’': 0x92, '“': 0x93, '”': 0x94, '•': 0x95, '–': 0x96, '—': 0x97,
	'˜': 0x98, '™': 0x99, 'š': 0x9A, '›': 0x9B, 'œ': 0x9C, 'ž': 0x9E, 'Ÿ': 0x9F,
}

// AppendLiteral appends t as a PDF literal string in WinAnsi encoding;
// characters it cannot show become '?', control characters a space.
func AppendLiteral(b []byte, t string) []byte {
	b = append(b, '(')
	for _, r := range t {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r == 0x7F:
			b = append(b, ' ')
		case r < 0x7F:
			b = append(b, byte(r))
		case r >= 0xA0 && r <= 0xFF:
			b = append(b, byte(r))
		default:
			if c, ok := winAnsiExtra[r]; ok {
				b = append(b, c)
			} else {
				b = append(b, '?')
			}
		}
	}
	return append(b, ')')
}

// Literal returns t as a PDF literal string in WinAnsi encoding.
func Literal(t string) string { return string(AppendLiteral(nil, t)) }

// CourierWidth is the width of s in Courier at size, in points.
func CourierWidth(size float64, s string) float64 {
	return CourierAdvance * size * float64(utf8.RuneCountInString(s))
}

// Pad fits s into exactly n characters (for Courier columns): shorter is
// padded with spaces, longer is cut with an ellipsis.
func Pad(s string, n int) string {
	l := utf8.RuneCountInString(s)
	if l <= n {
		return s + strings.Repeat(" ", n-l)
	}
	if n <= 0 {
		return ""
	}
	var b strings.Builder
	i := 0
	for _, r := range s {
		if i == n-1 {
			break
		}
		b.WriteRune(r)
		i++
	}
	b.WriteRune('…')
	return b.String()
}

// PadLeft fits s into exactly n characters, aligned right (for figures).
func PadLeft(s string, n int) string {
	l := utf8.RuneCountInString(s)
	if l < n {
		return strings.Repeat(" ", n-l) + s
	}
	return Pad(s, n)
}

// Wrap cuts s into lines of at most n characters, at spaces or commas where
// it can.
func Wrap(s string, n int) []string {
	if n < 2 {
		n = 2
	}
	var out []string
	for utf8.RuneCountInString(s) > n {
		rs := []rune(s)
		cut := n
		for i := n; i > n/2; i-- {
			if rs[i] == ' ' || rs[i] == ',' {
				cut = i + 1
				break
			}
		}
		out = append(out, strings.TrimRight(string(rs[:cut]), " "))
		s = strings.TrimLeft(string(rs[cut:]), " ")
	}
	return append(out, s)
}
