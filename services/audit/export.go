package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"keyconsole/models"
)

// Format is an export file format.
type Format string

// Export formats.
const (
	FormatCSV   Format = "csv"
	FormatJSONL Format = "jsonl"
	FormatPDF   Format = "pdf"
)

// ErrFormat means an export format is not offered.
var ErrFormat = errors.New("audit: unknown export format (use csv, jsonl or pdf)")

// ParseFormat returns the format named s.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatCSV, FormatJSONL, FormatPDF:
		return f, nil
	}
	return "", ErrFormat
}

// ContentType is the media type of the format.
func (f Format) ContentType() string {
	switch f {
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatJSONL:
		return "application/jsonl; charset=utf-8"
	default:
		return "application/pdf"
	}
}

// ExportRequest asks for one export of a filtered view.
type ExportRequest struct {
	Agency models.Agency
	Filter Filter
	Format Format
	Actor  Actor
	Origin Origin
}

// Exporter writes filtered views of an agency's audit log as CSV, JSON Lines
// or PDF, reading the records in batches so memory stays constant whatever
// the number of records.
type Exporter struct {
	store *models.AuditStore
	rec   *Recorder
	now   func() time.Time
	batch int
}

// NewExporter returns an exporter reading through store and recording each
// export with rec.
func NewExporter(store *models.AuditStore, rec *Recorder, now func() time.Time) *Exporter {
	if now == nil {
		now = time.Now
	}
	return &Exporter{store: store, rec: rec, now: now, batch: 1000}
}

// Export is one started export: a fixed set of records (every matching record
// up to the chain head at the start) ready to be written once.
type Export struct {
	x   *Exporter
	req ExportRequest
	// Records is how many records the export holds.
	Records int64
	// HeadSeq and HeadHash are the chain head the export was taken at.
	HeadSeq  int64
	HeadHash string
	// GeneratedAt is when the export started (UTC).
	GeneratedAt time.Time
	// OnBatch, when set, is called after each batch is written and flushed.
	OnBatch func(written int64)

	bound models.AuditFilter
	empty bool
}

// Start fixes the set of records to export (every record matching the filter
// up to the current chain head, so records appended while the export runs
// are not in it and the summary's count and head hash stay true), counts
// them and records the export in the audit log.
//
// The audit record cannot share a transaction with the export: the export is
// a stream that may last minutes and writes nothing of its own. It is
// therefore recorded here, when the export starts and before any byte is
// sent, so no export happens unrecorded; an export that breaks off is
// recorded a second time with a failure outcome.
func (x *Exporter) Start(ctx context.Context, req ExportRequest) (*Export, error) {
	if _, err := ParseFormat(string(req.Format)); err != nil {
		return nil, err
	}
	ex := &Export{x: x, req: req, GeneratedAt: x.now().UTC().Truncate(time.Second), bound: req.Filter.Model(req.Agency.ID)}
	head, err := x.store.Head(ctx, req.Agency.ID)
	switch {
	case isNotFound(err):
		ex.empty = true
	case err != nil:
		return nil, fmt.Errorf("audit: export: %w", err)
	default:
		ex.HeadSeq, ex.HeadHash = head.Seq, head.Hash
		last, err := x.store.BySeq(ctx, req.Agency.ID, head.Seq)
		if isNotFound(err) {
			// A chain whose head record is missing (the verifier reports it)
			// is still exported, up to its newest record.
			newest, perr := x.store.Page(ctx, models.AuditFilter{AgencyID: req.Agency.ID}, 1)
			if perr != nil {
				return nil, fmt.Errorf("audit: export: %w", perr)
			}
			if len(newest) == 0 {
				ex.empty = true
			} else {
				last, err = newest[0], nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("audit: export: %w", err)
		}
		ex.bound.BeforeID = last.ID + 1
	}
	if !ex.empty {
		if ex.Records, err = x.store.Count(ctx, ex.bound); err != nil {
			return nil, fmt.Errorf("audit: export: %w", err)
		}
	}
	if err := x.rec.Record(ctx, ex.event(OutcomeSuccess, "", ex.Records)); err != nil {
		return nil, fmt.Errorf("audit: export: %w", err)
	}
	return ex, nil
}

func (e *Export) event(outcome, reason string, records int64) Event {
	d := map[string]string{
		"format":         string(e.req.Format),
		"filters":        e.req.Filter.Values().Encode(),
		"record_count":   strconv.FormatInt(records, 10),
		"chain_head_seq": strconv.FormatInt(e.HeadSeq, 10),
	}
	return Event{AgencyID: e.req.Agency.ID, Actor: e.req.Actor, Action: ActionAuditExport, TargetType: TargetAuditChain,
		TargetID: strconv.FormatInt(e.req.Agency.ID, 10), TargetName: e.req.Agency.Name, Outcome: outcome, Reason: reason,
		Origin: e.req.Origin, Details: d}
}

// Filename is a download name for the export.
func (e *Export) Filename() string {
	return fmt.Sprintf("audit-%s-%s.%s", e.req.Agency.Slug, e.GeneratedAt.Format("20060102T150405Z"), e.req.Format)
}

// flusher is a writer that can push buffered bytes to the client (an HTTP
// response) so a long export arrives as it is made.
type flusher interface{ Flush() }

// WriteTo writes the export to w in its format and returns how many records
// it wrote. Records are read in batches of the exporter's batch size and
// written through; after each batch the output is flushed.
func (e *Export) WriteTo(ctx context.Context, w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var s format
	switch e.req.Format {
	case FormatCSV:
		s = newCSVExporter(bw)
	case FormatJSONL:
		s = eventFormat{&jsonlSink{enc: json.NewEncoder(bw)}}
	default:
		s = eventFormat{newPDFSink(bw)}
	}
	n, err := e.write(ctx, s, bw, w)
	if err != nil {
		// The export was recorded when it started; say that it broke off.
		_ = e.x.rec.Record(context.WithoutCancel(ctx), e.event(OutcomeFailure, "interrupted", n))
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

func (e *Export) write(ctx context.Context, s format, bw *bufio.Writer, w io.Writer) (int64, error) {
	if err := s.begin(e.meta()); err != nil {
		return 0, err
	}
	var n int64
	f := e.bound
	for !e.empty {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		got, last, err := s.batch(ctx, e.x.store, f, e.x.batch)
		n += int64(got)
		if err != nil {
			return n, err
		}
		if err := bw.Flush(); err != nil {
			return n, err
		}
		if fl, ok := w.(flusher); ok {
			fl.Flush()
		}
		if e.OnBatch != nil {
			e.OnBatch(n)
		}
		if got < e.x.batch {
			break
		}
		f.AfterID = last
	}
	if err := s.end(n); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// exportMeta is what every export says about itself.
type exportMeta struct {
	Agency      string
	Range       string
	Filters     string
	Records     int64
	HeadSeq     int64
	HeadHash    string
	GeneratedBy string
	GeneratedAt time.Time
}

func (e *Export) meta() exportMeta {
	by := e.req.Actor.Name
	if by == "" {
		by = e.req.Actor.ID
	}
	return exportMeta{
		Agency: fmt.Sprintf("%s (%s)", e.req.Agency.Name, e.req.Agency.Slug),
		Range:  e.req.Filter.RangeText(), Filters: e.req.Filter.Text(), Records: e.Records,
		HeadSeq: e.HeadSeq, HeadHash: e.HeadHash, GeneratedBy: by, GeneratedAt: e.GeneratedAt,
	}
}

// format writes one export format: begin, then batches of records in
// chain order, then end.
type format interface {
	begin(m exportMeta) error
	// batch writes up to limit records matching f after f.AfterID and
	// returns how many it wrote and the id of the last.
	batch(ctx context.Context, store *models.AuditStore, f models.AuditFilter, limit int) (int, int64, error)
	end(records int64) error
}

// sink is a format written one decoded event at a time (JSON Lines, PDF).
type sink interface {
	begin(m exportMeta) error
	row(e *models.AuditEvent) error
	end(records int64) error
}

// eventFormat is the format of a sink: each batch is read with Ascending
// and written event by event.
type eventFormat struct{ sink }

func (s eventFormat) batch(ctx context.Context, store *models.AuditStore, f models.AuditFilter, limit int) (int, int64, error) {
	batch, err := store.Ascending(ctx, f, limit)
	if err != nil {
		return 0, 0, err
	}
	for i := range batch {
		if err := s.row(&batch[i]); err != nil {
			return i, 0, err
		}
	}
	if len(batch) == 0 {
		return 0, 0, nil
	}
	return len(batch), batch[len(batch)-1].ID, nil
}

// Columns are the fields of every exported record, in order: the stored
// values exactly, so anyone can recompute each record's hash from an export.
func Columns() []string {
	return []string{"id", "seq", "occurred_at", "actor_type", "actor_id", "actor_name", "action", "target_type",
		"target_id", "target_name", "outcome", "reason", "source_ip", "user_agent", "request_id", "details", "prev_hash", "hash"}
}

// TimeLayout is how exports write times (the layout the chain hash uses).
const TimeLayout = time.RFC3339Nano

func columnValues(e *models.AuditEvent, out []string) []string {
	return append(out[:0], strconv.FormatInt(e.ID, 10), strconv.FormatInt(e.Seq, 10), e.OccurredAt.UTC().Format(TimeLayout),
		e.ActorType, e.ActorID, e.ActorName, e.Action, e.TargetType, e.TargetID, e.TargetName, e.Outcome, e.Reason,
		e.SourceIP, e.UserAgent, e.RequestID, e.Details, e.PrevHash, e.Hash)
}

// safeCell neutralises a spreadsheet formula: a cell starting with =, +, -,
// @, a tab or a carriage return is prefixed with a single quote, so Excel and
// its kin show it as text instead of evaluating it.
func safeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// JSONLine is one exported record in JSON Lines ("type": "event").
type JSONLine struct {
	Type       string `json:"type"`
	ID         int64  `json:"id"`
	Seq        int64  `json:"seq"`
	OccurredAt string `json:"occurred_at"`
	ActorType  string `json:"actor_type"`
	ActorID    string `json:"actor_id"`
	ActorName  string `json:"actor_name"`
	Action     string `json:"action"`
	TargetType string `json:"target_type"`
	TargetID   string `json:"target_id"`
	TargetName string `json:"target_name"`
	Outcome    string `json:"outcome"`
	Reason     string `json:"reason"`
	SourceIP   string `json:"source_ip"`
	UserAgent  string `json:"user_agent"`
	RequestID  string `json:"request_id"`
	Details    string `json:"details"`
	PrevHash   string `json:"prev_hash"`
	Hash       string `json:"hash"`
}

// JSONHeader is the first line of a JSON Lines export ("type": "export").
type JSONHeader struct {
	Type          string `json:"type"`
	Agency        string `json:"agency"`
	Range         string `json:"range"`
	Filters       string `json:"filters"`
	RecordCount   int64  `json:"record_count"`
	ChainHeadSeq  int64  `json:"chain_head_seq"`
	ChainHeadHash string `json:"chain_head_hash"`
	GeneratedBy   string `json:"generated_by"`
	GeneratedAt   string `json:"generated_at"`
}

// JSONTrailer is the last line of a complete JSON Lines export ("type": "end").
type JSONTrailer struct {
	Type    string `json:"type"`
	Records int64  `json:"records"`
}

// jsonlSink writes JSON Lines: a header line, one line per record, and a
// trailer whose count tells a complete file from a cut one.
type jsonlSink struct {
	enc  *json.Encoder
	line JSONLine
}

func (s *jsonlSink) begin(m exportMeta) error {
	return s.enc.Encode(JSONHeader{Type: "export", Agency: m.Agency, Range: m.Range, Filters: m.Filters, RecordCount: m.Records,
		ChainHeadSeq: m.HeadSeq, ChainHeadHash: m.HeadHash, GeneratedBy: m.GeneratedBy, GeneratedAt: m.GeneratedAt.Format(time.RFC3339)})
}

func (s *jsonlSink) row(e *models.AuditEvent) error {
	s.line = JSONLine{Type: "event", ID: e.ID, Seq: e.Seq, OccurredAt: e.OccurredAt.UTC().Format(TimeLayout),
		ActorType: e.ActorType, ActorID: e.ActorID, ActorName: e.ActorName, Action: e.Action, TargetType: e.TargetType,
		TargetID: e.TargetID, TargetName: e.TargetName, Outcome: e.Outcome, Reason: e.Reason, SourceIP: e.SourceIP,
		UserAgent: e.UserAgent, RequestID: e.RequestID, Details: e.Details, PrevHash: e.PrevHash, Hash: e.Hash}
	return s.enc.Encode(&s.line)
}

func (s *jsonlSink) end(n int64) error { return s.enc.Encode(JSONTrailer{Type: "end", Records: n}) }
