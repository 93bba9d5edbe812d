// Package pdfdoc writes PDF documents page by page with the standard library
// alone: text in the standard Type 1 fonts (no embedding, WinAnsi encoding)
// and simple vector drawing (lines, rectangles, paths, circles).
//
// A document library such as go-pdf/fpdf keeps every page in memory until
// the document is closed and names its fonts with SHA-1, which panics under
// GODEBUG=fips140=only. Here each page is compressed and written as soon as
// it is finished; only the byte offset of each object is kept, for the
// cross-reference table at the end (16 bytes per page), so a document of any
// length is written in constant memory.
//
// Coordinates are PDF points (1/72 inch) with the origin at the bottom left
// of the page, as in PDF itself.
package pdfdoc

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Page sizes in points.
const (
	// LetterLandscapeW and LetterLandscapeH are US Letter turned sideways.
	LetterLandscapeW = 792.0
	LetterLandscapeH = 612.0
)

// Font is one of the standard fonts every PDF reader has.
type Font int

// The fonts a document offers; each page refers to them as /F1 to /F4.
const (
	Courier Font = iota + 1
	CourierBold
	HelveticaBold
	Helvetica
)

var fontNames = [...]string{Courier: "Courier", CourierBold: "Courier-Bold", HelveticaBold: "Helvetica-Bold", Helvetica: "Helvetica"}

// CourierAdvance is the advance width of every Courier glyph, as a fraction
// of the font size: Courier is fixed-width, so text in it can be measured and
// laid out in columns by counting characters.
const CourierAdvance = 0.6

// Object numbers fixed up front; page i (0-based) has its content stream at
// firstPageObj+2i and its page object right after.
const (
	catalogObj = 1
	pagesObj   = 2
	fontObj    = 3 // fonts take fontObj .. fontObj+len(fonts)-1
	infoObj    = fontObj + len(fontNames) - 1
	firstPage  = infoObj + 1
)

// Options describe a document.
type Options struct {
	// Width and Height are the page size in points; zero means US Letter
	// landscape.
	Width, Height float64
	// Title goes into the document information dictionary.
	Title string
	// Created is the creation date recorded in the document.
	Created time.Time
}

// countingWriter tracks the offset of each object.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// Writer writes one PDF document to an io.Writer, a page at a time. The
// first error sticks: later calls do nothing and Close returns it.
type Writer struct {
	w       *countingWriter
	opts    Options
	offsets []int64 // by object number; 0 is the free entry
	pages   int
	page    Page
	packed  bytes.Buffer
	zw      *zlib.Writer
	started bool
	closed  bool
}

// New returns a writer of a document to w. Nothing is written until the
// first page is finished or the document is closed. w is written in small
// pieces: give it a buffered writer.
func New(w io.Writer, o Options) *Writer {
	if o.Width <= 0 || o.Height <= 0 {
		o.Width, o.Height = LetterLandscapeW, LetterLandscapeH
	}
	d := &Writer{w: &countingWriter{w: w}, opts: o, offsets: make([]int64, firstPage)}
	d.zw = zlib.NewWriter(&d.packed)
	return d
}

// Width is the page width in points.
func (d *Writer) Width() float64 { return d.opts.Width }

// Height is the page height in points.
func (d *Writer) Height() float64 { return d.opts.Height }

// Pages is the number of pages finished so far.
func (d *Writer) Pages() int { return d.pages }

// Err returns the first error met while writing.
func (d *Writer) Err() error { return d.w.err }

// Page returns the page being drawn, cleared when the previous one was
// finished. The page is only valid until the next EndPage.
func (d *Writer) Page() *Page { return &d.page }

func (d *Writer) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(d.w, format, args...)
}

func (d *Writer) startObj(n int) {
	for len(d.offsets) <= n {
		d.offsets = append(d.offsets, 0)
	}
	d.offsets[n] = d.w.n
	d.printf("%d 0 obj\n", n)
}

func (d *Writer) header() {
	if d.started {
		return
	}
	d.started = true
	d.printf("%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n")
	for f := Courier; int(f) < len(fontNames); f++ {
		d.startObj(fontObj + int(f) - 1)
		d.printf("<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>\nendobj\n", fontNames[f])
	}
}

// EndPage compresses the page drawn so far, writes it and starts a new,
// empty one.
func (d *Writer) EndPage() error {
	if d.closed {
		return fmt.Errorf("pdfdoc: page after close")
	}
	d.header()
	d.page.endText()
	d.pages++
	d.packed.Reset()
	d.zw.Reset(&d.packed)
	if _, err := d.zw.Write(d.page.buf.Bytes()); err != nil && d.w.err == nil {
		d.w.err = err
	}
	if err := d.zw.Close(); err != nil && d.w.err == nil {
		d.w.err = err
	}
	contentObj := firstPage + 2*(d.pages-1)
	d.startObj(contentObj)
	d.printf("<< /Length %d /Filter /FlateDecode >>\nstream\n", d.packed.Len())
	_, _ = d.w.Write(d.packed.Bytes())
	d.printf("\nendstream\nendobj\n")
	d.startObj(contentObj + 1)
	d.printf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] /Contents %d 0 R /Resources << /Font <<",
		pagesObj, num(d.opts.Width), num(d.opts.Height), contentObj)
	for f := Courier; int(f) < len(fontNames); f++ {
		d.printf(" /F%d %d 0 R", int(f), fontObj+int(f)-1)
	}
	d.printf(" >> >> >>\nendobj\n")
	d.page.buf.Reset()
	d.page.inText = false
	return d.w.err
}

// Close writes the page tree, catalog, document information and the
// cross-reference table. A document needs at least one page: an empty one
// is added if none was finished.
func (d *Writer) Close() error {
	if d.closed {
		return d.w.err
	}
	if d.pages == 0 || d.page.buf.Len() > 0 {
		if err := d.EndPage(); err != nil {
			return err
		}
	}
	d.closed = true
	d.startObj(pagesObj)
	d.printf("<< /Type /Pages /Count %d /Kids [", d.pages)
	for i := 0; i < d.pages; i++ {
		if i%16 == 0 {
			d.printf("\n")
		}
		d.printf("%d 0 R ", firstPage+2*i+1)
	}
	d.printf("] >>\nendobj\n")
	d.startObj(catalogObj)
	d.printf("<< /Type /Catalog /Pages %d 0 R >>\nendobj\n", pagesObj)
	d.startObj(infoObj)
	created := d.opts.Created
	if created.IsZero() {
		created = time.Now()
	}
	d.printf("<< /Title %s /Producer (keyconsole) /CreationDate (D:%s) >>\nendobj\n",
		Literal(d.opts.Title), created.UTC().Format("20060102150405Z"))
	xref := d.w.n
	d.printf("xref\n0 %d\n0000000000 65535 f \n", len(d.offsets))
	for _, off := range d.offsets[1:] {
		d.printf("%010d 00000 n \n", off)
	}
	d.printf("trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(d.offsets), catalogObj, infoObj, xref)
	return d.w.err
}

// num formats a coordinate compactly: at most two decimals, no trailing
// zeros.
func num(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// round2 keeps two decimals, enough for any printer.
func round2(f float64) string {
	s := strconv.FormatFloat(f, 'f', 2, 64)
	// Trim "1.50" to "1.5" and "2.00" to "2".
	i := len(s)
	for i > 0 && s[i-1] == '0' {
		i--
	}
	if i > 0 && s[i-1] == '.' {
		i--
	}
	if s[:i] == "-0" {
		return "0"
	}
	return s[:i]
}
