package pdfdoc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func needPoppler(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"pdftotext", "pdftoppm", "pdfinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required to read the PDF: install poppler-utils (apt-get install -y poppler-utils)", tool)
		}
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s: %v: %s", name, err, ee.Stderr)
		}
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// pdfInfo returns pdfinfo's fields.
func pdfInfo(t *testing.T, path string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(string(run(t, "pdfinfo", path)), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

type word struct {
	x    float64
	text string
}

var bboxWord = regexp.MustCompile(`<word xMin="([0-9.]+)" yMin="[0-9.]+" xMax="[0-9.]+" yMax="[0-9.]+">([^<]*)</word>`)

// words returns each word pdftotext finds with its left edge.
func words(t *testing.T, path string) []word {
	t.Helper()
	var out []word
	for _, m := range bboxWord.FindAllStringSubmatch(string(run(t, "pdftotext", "-bbox", path, "-")), -1) {
		x, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, word{x: x, text: m[2]})
	}
	return out
}

// checkXref verifies that every cross-reference entry points at the start of
// its object, so readers that do not repair files open it.
func checkXref(t *testing.T, doc []byte) {
	t.Helper()
	m := regexp.MustCompile(`startxref\n(\d+)\n%%EOF\n$`).FindSubmatch(doc)
	if m == nil {
		t.Fatal("no startxref at the end")
	}
	off, _ := strconv.Atoi(string(m[1]))
	if !bytes.HasPrefix(doc[off:], []byte("xref\n0 ")) {
		t.Fatalf("startxref %d does not point at the xref table", off)
	}
	lines := strings.Split(string(doc[off:]), "\n")
	n, _ := strconv.Atoi(strings.Fields(lines[1])[1])
	for i := 1; i < n; i++ {
		entry := lines[2+i]
		o, err := strconv.Atoi(entry[:10])
		if err != nil {
			t.Fatalf("xref entry %d: %q", i, entry)
		}
		if want := fmt.Sprintf("%d 0 obj\n", i); !bytes.HasPrefix(doc[o:], []byte(want)) {
			t.Fatalf("xref entry %d points at %q", i, doc[o:o+12])
		}
	}
}

func TestDocumentTextAndPages(t *testing.T) {
	needPoppler(t)
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	d := New(bw, Options{Title: "Test (report) ü", Created: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)})
	const pages = 40
	for i := 1; i <= pages; i++ {
		p := d.Page()
		p.Text(HelveticaBold, 14, 36, 560, fmt.Sprintf("Heading of page %d", i))
		p.BeginLines(Courier, 9, 11, 36, 520)
		p.Line("plain line")
		p.Line(`brackets (a) \ back – dash “quoted” Zoë €5 ☃`)
		p.Font(CourierBold, 9)
		p.Line(Pad("column", 10) + "|")
		p.EndLines()
		p.TextRight(Courier, 8, 756, 20, fmt.Sprintf("page %d of %d", i, pages))
		if err := d.EndPage(); err != nil {
			t.Fatal(err)
		}
		if d.Pages() != i {
			t.Fatalf("Pages() = %d after %d pages", d.Pages(), i)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	doc := out.Bytes()
	checkXref(t, doc)
	path := writeTemp(t, doc)
	info := pdfInfo(t, path)
	for k, want := range map[string]string{"Pages": strconv.Itoa(pages), "Title": "Test (report) ü", "Page size": "792 x 612 pts (letter)"} {
		if info[k] != want {
			t.Errorf("pdfinfo %s = %q, want %q", k, info[k], want)
		}
	}
	text := string(run(t, "pdftotext", "-layout", path, "-"))
	for _, want := range []string{
		"Heading of page 1", "Heading of page 40", "plain line",
		`brackets (a) \ back – dash “quoted” Zoë €5 ?`,
		"page 1 of 40", "page 40 of 40",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	// Courier is fixed-width: the bar after a ten-character column starts
	// ten advances (10 × 0.6 × 9 pt) after the left edge.
	var bar []word
	for _, w := range words(t, path) {
		if w.text == "|" {
			bar = append(bar, w)
		}
	}
	if len(bar) != pages || bar[0].x != 36+10*CourierAdvance*9 {
		t.Errorf("column bars at %v, want %d at x=%v", bar, pages, 36+10*CourierAdvance*9)
	}
	if strings.Count(text, "plain line") != pages {
		t.Errorf("%d pages show their lines, want %d", strings.Count(text, "plain line"), pages)
	}
}

// TestPagesAreWrittenAsTheyEnd checks that a finished page reaches the
// writer at once: the document is never held in memory.
func TestPagesAreWrittenAsTheyEnd(t *testing.T) {
	var out bytes.Buffer
	d := New(&out, Options{})
	if out.Len() != 0 {
		t.Fatal("bytes written before the first page")
	}
	last := 0
	for i := 0; i < 5; i++ {
		d.Page().Text(Courier, 10, 10, 10, strings.Repeat("x", 100))
		if err := d.EndPage(); err != nil {
			t.Fatal(err)
		}
		if out.Len() <= last {
			t.Fatalf("page %d was not written when it ended", i+1)
		}
		last = out.Len()
	}
}

// TestEmptyDocumentHasAPage checks that closing at once still gives a valid
// one-page document.
func TestEmptyDocumentHasAPage(t *testing.T) {
	needPoppler(t)
	var out bytes.Buffer
	d := New(&out, Options{Title: "empty"})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	checkXref(t, out.Bytes())
	if info := pdfInfo(t, writeTemp(t, out.Bytes())); info["Pages"] != "1" {
		t.Fatalf("pdfinfo: %v", info)
	}
	if err := d.EndPage(); err == nil {
		t.Fatal("a page was added after Close")
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestWriteErrorSticks(t *testing.T) {
	d := New(&failWriter{after: 3}, Options{})
	d.Page().Text(Courier, 10, 10, 10, "x")
	var err error
	for i := 0; i < 3 && err == nil; i++ {
		err = d.EndPage()
	}
	if err == nil || err.Error() != "disk full" {
		t.Fatalf("EndPage error = %v, want disk full", err)
	}
	if err := d.Close(); err == nil || d.Err() == nil {
		t.Fatal("Close forgot the write error")
	}
}

// ppm reads a binary PPM (P6) image as pdftoppm writes it.
type ppm struct {
	w, h int
	px   []byte
}

func readPPM(t *testing.T, b []byte) ppm {
	t.Helper()
	var w, h, maxv int
	var magic string
	r := bytes.NewReader(b)
	if _, err := fmt.Fscan(r, &magic, &w, &h, &maxv); err != nil || magic != "P6" || maxv != 255 {
		t.Fatalf("not a P6 image: %v %q", err, magic)
	}
	px := b[len(b)-r.Len()+1:]
	if len(px) != w*h*3 {
		t.Fatalf("image has %d bytes of pixels, want %d", len(px), w*h*3)
	}
	return ppm{w: w, h: h, px: px}
}

// at returns the pixel at PDF point (x, y) of a 72 dpi rendering.
func (p ppm) at(x, y float64) [3]byte {
	col, row := int(x), p.h-1-int(y)
	i := (row*p.w + col) * 3
	return [3]byte{p.px[i], p.px[i+1], p.px[i+2]}
}

// TestVectorDrawing renders shapes with poppler and checks the pixels: the
// filled rectangle, the circle, the triangle path and the stroked line
// appear where they were drawn, in their colours.
func TestVectorDrawing(t *testing.T) {
	needPoppler(t)
	var out bytes.Buffer
	d := New(&out, Options{Width: 200, Height: 100})
	p := d.Page()
	p.Save()
	p.Fill(Hex(0xb50909))
	p.FillRect(10, 10, 40, 30) // red box 10..50 x 10..40
	p.Fill(Hex(0x005ea2))
	p.Circle(100, 50, 15) // blue disc
	p.FillPath()
	p.Fill(Hex(0xc05600))
	p.Stroke(Black)
	p.MoveTo(150, 20)
	p.LineTo(190, 20)
	p.LineTo(170, 60)
	p.ClosePath()
	p.FillStrokePath() // orange triangle
	p.Stroke(Hex(0x00a000))
	p.LineWidth(4)
	p.Dash(0, 0)
	p.StrokeLine(10, 90, 190, 90) // green line at y=90
	p.Restore()
	p.Dash(3, 2)
	p.StrokeRect(60, 5, 20, 10)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	img := readPPM(t, run(t, "pdftoppm", "-r", "72", "-singlefile", writeTemp(t, out.Bytes())))
	if img.w != 200 || img.h != 100 {
		t.Fatalf("rendered %dx%d, want 200x100", img.w, img.h)
	}
	near := func(got [3]byte, want Color) bool {
		for i, c := range []float64{want.R, want.G, want.B} {
			if d := int(got[i]) - int(c*255+0.5); d < -8 || d > 8 {
				return false
			}
		}
		return true
	}
	for _, tc := range []struct {
		name string
		x, y float64
		want Color
	}{
		{"rectangle", 30, 25, Hex(0xb50909)},
		{"outside the rectangle", 55, 25, White},
		{"circle centre", 100, 50, Hex(0x005ea2)},
		{"circle edge inside", 100, 62, Hex(0x005ea2)},
		{"circle corner outside", 112, 62, White},
		{"triangle", 170, 30, Hex(0xc05600)},
		{"beside the triangle", 152, 55, White},
		{"line", 100, 90, Hex(0x00a000)},
		{"below the line", 100, 85, White},
	} {
		if got := img.at(tc.x, tc.y); !near(got, tc.want) {
			t.Errorf("%s at (%v,%v) = %v, want %v", tc.name, tc.x, tc.y, got, tc.want)
		}
	}
}

func TestLiteral(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "()"},
		{"abc", "(abc)"},
		{`a(b)c\d`, `(a\(b\)c\\d)`},
		{"tab\tnew\nline", "(tab new line)"},
		{"Zoë", "(Zo\xeb)"},
		{"€–…", "(\x80\x96\x85)"},
		{"☃", "(?)"},
	} {
		if got := Literal(tc.in); got != tc.want {
			t.Errorf("Literal(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPadAndWrap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		pad  string
		left string
	}{
		{"abc", 5, "abc  ", "  abc"},
		{"abcdef", 4, "abc…", "abc…"},
		{"abcd", 4, "abcd", "abcd"},
		{"Zoë", 4, "Zoë ", " Zoë"},
		{"x", 0, "", ""},
	} {
		if got := Pad(tc.in, tc.n); got != tc.pad {
			t.Errorf("Pad(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.pad)
		}
		if got := PadLeft(tc.in, tc.n); got != tc.left {
			t.Errorf("PadLeft(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.left)
		}
	}
	for _, tc := range []struct {
		in   string
		n    int
		want []string
	}{
		{"short", 10, []string{"short"}},
		{"one two three four", 9, []string{"one two", "three", "four"}},
		{"a,b,c,d,e,f", 4, []string{"a,b,", "c,d,", "e,f"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
	} {
		if got := Wrap(tc.in, tc.n); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Wrap(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	if w := CourierWidth(10, "abcd"); w != 24 {
		t.Errorf("CourierWidth = %v, want 24", w)
	}
}
