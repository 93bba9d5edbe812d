package pdfdoc

import (
	"bytes"
	"math"
)

// Color is an RGB colour, each component from 0 to 1.
type Color struct{ R, G, B float64 }

// Hex returns the colour written #rrggbb as 0xrrggbb.
func Hex(v uint32) Color {
	return Color{R: float64(v>>16&0xFF) / 255, G: float64(v>>8&0xFF) / 255, B: float64(v&0xFF) / 255}
}

// Black and White are the usual ink and paper.
var (
	Black = Color{}
	White = Color{R: 1, G: 1, B: 1}
)

// Page is the content of the page being drawn. Its methods append PDF
// operators; nothing is checked beyond what keeps the stream well formed
// (text outside a text object opens one).
type Page struct {
	buf    bytes.Buffer
	line   []byte
	inText bool
}

func (p *Page) op(parts ...string) {
	for i, s := range parts {
		if i > 0 {
			p.buf.WriteByte(' ')
		}
		p.buf.WriteString(s)
	}
	p.buf.WriteByte('\n')
}

func (p *Page) endText() {
	if p.inText {
		p.buf.WriteString("ET\n")
		p.inText = false
	}
}

// Text writes s in font f at size, its baseline starting at (x, y).
func (p *Page) Text(f Font, size, x, y float64, s string) {
	p.endText()
	p.op("BT", fontRef(f), round2(size), "Tf", round2(x), round2(y), "Td")
	p.show(s)
	p.buf.WriteString(" Tj\nET\n")
}

// TextRight writes s in Courier or Courier-Bold ending at x (the width is
// known because Courier is fixed-width).
func (p *Page) TextRight(f Font, size, x, y float64, s string) {
	p.Text(f, size, x-CourierWidth(size, s), y, s)
}

// TextCenter writes s in Courier or Courier-Bold centred on x.
func (p *Page) TextCenter(f Font, size, x, y float64, s string) {
	p.Text(f, size, x-CourierWidth(size, s)/2, y, s)
}

// BeginLines opens a block of lines in font f at size, leading points apart,
// the first baseline starting at (x, y). Add lines with Line and close the
// block with EndLines; a block is much smaller than one Text per line.
func (p *Page) BeginLines(f Font, size, leading, x, y float64) {
	p.endText()
	p.op("BT", fontRef(f), round2(size), "Tf", round2(leading), "TL", round2(x), round2(y), "Td")
	p.inText = true
}

// Line shows s and moves to the next line of the block.
func (p *Page) Line(s string) {
	if !p.inText {
		p.BeginLines(Courier, 10, 12, 0, 0)
	}
	p.show(s)
	p.buf.WriteString(" Tj T*\n")
}

// Font switches the font of the open block of lines.
func (p *Page) Font(f Font, size float64) {
	if p.inText {
		p.op(fontRef(f), round2(size), "Tf")
	}
}

// EndLines closes the block of lines.
func (p *Page) EndLines() { p.endText() }

func (p *Page) show(s string) {
	p.line = AppendLiteral(p.line[:0], s)
	p.buf.Write(p.line)
}

func fontRef(f Font) string {
	if f < Courier || int(f) >= len(fontNames) {
		f = Courier
	}
	return "/F" + string(rune('0'+int(f)))
}

// Fill sets the colour of filled shapes and of text.
func (p *Page) Fill(c Color) {
	p.op(round2(c.R), round2(c.G), round2(c.B), "rg")
}

// Stroke sets the colour of lines and outlines.
func (p *Page) Stroke(c Color) {
	p.op(round2(c.R), round2(c.G), round2(c.B), "RG")
}

// LineWidth sets the width of lines in points.
func (p *Page) LineWidth(w float64) { p.op(round2(w), "w") }

// Dash sets a dash pattern of on points drawn and off points skipped;
// Dash(0, 0) draws solid lines again.
func (p *Page) Dash(on, off float64) {
	if on <= 0 {
		p.op("[] 0 d")
		return
	}
	p.op("["+round2(on), round2(off)+"]", "0 d")
}

// Save keeps the graphics state (colours, widths, dashes) to come back to
// with Restore.
func (p *Page) Save() { p.endText(); p.op("q") }

// Restore returns to the state kept by the matching Save.
func (p *Page) Restore() { p.endText(); p.op("Q") }

// StrokeLine draws a line from (x1, y1) to (x2, y2).
func (p *Page) StrokeLine(x1, y1, x2, y2 float64) {
	p.endText()
	p.op(round2(x1), round2(y1), "m", round2(x2), round2(y2), "l S")
}

// FillRect fills the rectangle whose lower-left corner is (x, y).
func (p *Page) FillRect(x, y, w, h float64) {
	p.endText()
	p.op(round2(x), round2(y), round2(w), round2(h), "re f")
}

// StrokeRect outlines the rectangle whose lower-left corner is (x, y).
func (p *Page) StrokeRect(x, y, w, h float64) {
	p.endText()
	p.op(round2(x), round2(y), round2(w), round2(h), "re S")
}

// MoveTo starts a new path at (x, y).
func (p *Page) MoveTo(x, y float64) { p.endText(); p.op(round2(x), round2(y), "m") }

// LineTo adds a straight segment to (x, y).
func (p *Page) LineTo(x, y float64) { p.op(round2(x), round2(y), "l") }

// ClosePath closes the current subpath.
func (p *Page) ClosePath() { p.op("h") }

// StrokePath draws the outline of the current path.
func (p *Page) StrokePath() { p.op("S") }

// FillPath fills the current path.
func (p *Page) FillPath() { p.op("f") }

// FillStrokePath fills the current path and draws its outline.
func (p *Page) FillStrokePath() { p.op("B") }

// kappa places the control points of a cubic Bézier quarter circle.
const kappa = 4 * (math.Sqrt2 - 1) / 3

// Circle adds a circle of radius r centred on (cx, cy) to the path, as four
// Bézier arcs; fill or stroke it after.
func (p *Page) Circle(cx, cy, r float64) {
	k := kappa * r
	p.MoveTo(cx+r, cy)
	p.curve(cx+r, cy+k, cx+k, cy+r, cx, cy+r)
	p.curve(cx-k, cy+r, cx-r, cy+k, cx-r, cy)
	p.curve(cx-r, cy-k, cx-k, cy-r, cx, cy-r)
	p.curve(cx+k, cy-r, cx+r, cy-k, cx+r, cy)
	p.ClosePath()
}

func (p *Page) curve(x1, y1, x2, y2, x3, y3 float64) {
	p.op(round2(x1), round2(y1), round2(x2), round2(y2), round2(x3), round2(y3), "c")
}

// Len is the size of the page's content so far, in bytes.
func (p *Page) Len() int { return p.buf.Len() }
