// Package reports builds the compliance reports of an agency that are not
// the audit log itself: the credential inventory, every credential of every
// type with its dates and its standing against the rotation policy, as a page
// summary, a CSV file and a PDF document with the age chart. Reports hold
// names, ids and fingerprints, never a secret value.
package reports

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/inventory"
	"keyconsole/services/policy"
)

// Format is a report file format.
type Format string

// Report formats.
const (
	FormatCSV Format = "csv"
	FormatPDF Format = "pdf"
)

// ErrFormat means a report format is not offered.
var ErrFormat = errors.New("reports: unknown format (use csv or pdf)")

// ParseFormat returns the format named s.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatCSV, FormatPDF:
		return f, nil
	}
	return "", ErrFormat
}

// ContentType is the media type of the format.
func (f Format) ContentType() string {
	if f == FormatCSV {
		return "text/csv; charset=utf-8"
	}
	return "application/pdf"
}

// Lister returns every credential of an agency, revoked ones included; the
// inventory service is one.
type Lister interface {
	Items(ctx context.Context, agencyID int64) ([]inventory.Item, error)
}

// Config are the dependencies of the reports service.
type Config struct {
	Inventory Lister
	Policies  policy.Source
	Audit     *audit.Recorder
	Clock     func() time.Time
}

// Service builds the reports of an agency.
type Service struct {
	cfg Config
}

// NewService returns the reports service.
func NewService(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Policies == nil {
		cfg.Policies = policy.DefaultSource{}
	}
	return &Service{cfg: cfg}
}

// Policy states of a row beyond the policy package's own.
const (
	// StateNotApplicable marks a state that does not apply: the credential is
	// no longer active, or its type has no such measure (an IdP client
	// secret's use is not seen by the console).
	StateNotApplicable = "n/a"
)

// Compliance values of a row.
const (
	CompliantYes = "yes"
	CompliantNo  = "no"
)

// Row is one credential of the inventory, measured against the policy.
type Row struct {
	// Type is policy.TypeAPICredential, policy.TypeSSHKey,
	// policy.TypeWebhookSecret or inventory.TypeIdPSecret.
	Type        string
	ID          int64
	Name        string
	Reference   string
	Environment string
	Status      string
	CreatedAt   time.Time
	RotatedAt   *time.Time
	LastUsedAt  *time.Time
	ExpiresAt   *time.Time
	Active      bool
	// AgeDays counts whole days since creation or the last rotation.
	AgeDays int
	// DueAt is when the credential reaches its maximum age (an IdP client
	// secret: its expiry); zero when it no longer applies.
	DueAt time.Time
	// AgeState is policy.AgeOK, AgeDueSoon, AgeOverdue or StateNotApplicable.
	AgeState string
	// UseState is policy.UseRecent, UseNever, UseUnused or StateNotApplicable.
	UseState string
	// Compliant is CompliantYes, CompliantNo or StateNotApplicable.
	Compliant string
}

// TypeSummary counts the credentials of one type.
type TypeSummary struct {
	Type, Label   string
	Total, Active int
	// OK, DueSoon and Overdue count the active credentials by age (an IdP
	// client secret: by expiry).
	OK, DueSoon, Overdue int
	// NeverUsed and Unused count the active credentials by use.
	NeverUsed, Unused       int
	Compliant, NotCompliant int
	// LimitDays is the policy's maximum age of the type; 0 when the type
	// is measured by its expiry instead.
	LimitDays int
	// MeasuresUse says whether the console sees the type's use.
	MeasuresUse bool
}

// StatusCount is how many credentials have one status.
type StatusCount struct {
	Status string
	Count  int
}

// Summary counts the inventory by type, status and compliance.
type Summary struct {
	// All adds up every type.
	All      TypeSummary
	Types    []TypeSummary
	Statuses []StatusCount
}

// Inventory is an agency's credential inventory at one moment.
type Inventory struct {
	Agency      models.Agency
	GeneratedAt time.Time
	Policy      policy.Policy
	Rows        []Row
	Summary     Summary
	// Chart is the age chart in figures, one row per policy type.
	Chart []inventory.ChartRow
	items []inventory.Item
}

// ChartSVG is the age chart of the inventory as an accessible SVG document.
func (inv Inventory) ChartSVG() []byte {
	return inventory.AgeChartSVG(inv.items, inv.Policy, inv.GeneratedAt)
}

// PolicyText describes the policy the inventory was measured against.
func (inv Inventory) PolicyText() string {
	p := inv.Policy
	var ages []string
	for _, t := range policy.Types() {
		ages = append(ages, fmt.Sprintf("%s %d days", policy.TypeLabel(t), maxAgeDays(p, t)))
	}
	return fmt.Sprintf("maximum age: %s; due soon %d days before; unused after %d days; IdP client secrets due soon %d days before expiry",
		strings.Join(ages, ", "), p.DueSoonDays, p.UnusedDays, p.IdPWarningDays)
}

func maxAgeDays(p policy.Policy, t string) int {
	if d := p.MaxAgeDays[t]; d > 0 {
		return d
	}
	return int(p.MaxAge(t) / (24 * time.Hour))
}

// TypeLabel is the singular display name of a credential type.
func TypeLabel(t string) string {
	switch t {
	case policy.TypeAPICredential:
		return "API credential"
	case policy.TypeSSHKey:
		return "SSH key"
	case policy.TypeWebhookSecret:
		return "Webhook secret"
	case inventory.TypeIdPSecret:
		return "IdP client secret"
	}
	return t
}

// typeOrder sorts the policy types first, in their display order, then the
// IdP client secrets, then anything else by name.
func typeOrder(t string) int {
	for i, pt := range policy.Types() {
		if pt == t {
			return i
		}
	}
	if t == inventory.TypeIdPSecret {
		return len(policy.Types())
	}
	return len(policy.Types()) + 1
}

// Inventory gathers and measures every credential of the agency now.
func (s *Service) Inventory(ctx context.Context, agency models.Agency) (Inventory, error) {
	p, err := s.cfg.Policies.Policy(ctx, agency.ID)
	if err != nil {
		return Inventory{}, fmt.Errorf("reports: policy: %w", err)
	}
	items, err := s.cfg.Inventory.Items(ctx, agency.ID)
	if err != nil {
		return Inventory{}, fmt.Errorf("reports: inventory: %w", err)
	}
	return Measure(agency, items, p, s.cfg.Clock().UTC().Truncate(time.Second)), nil
}

// Measure builds the inventory of items against the policy at now.
func Measure(agency models.Agency, items []inventory.Item, p policy.Policy, now time.Time) Inventory {
	inv := Inventory{Agency: agency, GeneratedAt: now, Policy: p, items: items, Chart: inventory.AgeChartRows(items, p, now)}
	for _, it := range items {
		inv.Rows = append(inv.Rows, measure(it, p, now))
	}
	sort.SliceStable(inv.Rows, func(i, j int) bool {
		a, b := inv.Rows[i], inv.Rows[j]
		if oa, ob := typeOrder(a.Type), typeOrder(b.Type); oa != ob {
			return oa < ob
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if la, lb := strings.ToLower(a.Name), strings.ToLower(b.Name); la != lb {
			return la < lb
		}
		return a.ID < b.ID
	})
	inv.Summary = summarize(inv.Rows, p)
	return inv
}

func measure(it inventory.Item, p policy.Policy, now time.Time) Row {
	r := Row{Type: it.Type, ID: it.ID, Name: it.Name, Reference: reference(it), Environment: it.Environment, Status: it.Status,
		CreatedAt: it.CreatedAt.UTC(), RotatedAt: utcPtr(it.RotatedAt), LastUsedAt: utcPtr(it.LastUsedAt), ExpiresAt: utcPtr(it.ExpiresAt),
		Active: it.Active()}
	if r.Status == "" {
		r.Status = inventory.StatusActive
	}
	ev := inventory.EvaluateItem(it, p, now)
	if ev.Age > 0 {
		r.AgeDays = int(ev.Age / (24 * time.Hour))
	}
	r.AgeState, r.UseState, r.Compliant = StateNotApplicable, StateNotApplicable, StateNotApplicable
	if !r.Active {
		return r
	}
	r.DueAt = ev.DueAt.UTC()
	r.AgeState = ev.AgeState
	if it.Type != inventory.TypeIdPSecret {
		r.UseState = ev.UseState
	}
	r.Compliant = CompliantYes
	if r.AgeState == policy.AgeOverdue || r.UseState == policy.UseNever || r.UseState == policy.UseUnused {
		r.Compliant = CompliantNo
	}
	return r
}

// reference is what identifies a credential without being one: a client_id,
// a key fingerprint, an endpoint URL without its query (a receiver's query
// string may carry a token), an IdP provider id.
func reference(it inventory.Item) string {
	if it.Type != policy.TypeWebhookSecret {
		return it.Extra
	}
	u, err := url.Parse(it.Extra)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

var statusOrder = []string{inventory.StatusActive, inventory.StatusRevoked, inventory.StatusExpired, inventory.StatusDisabled}

func summarize(rows []Row, p policy.Policy) Summary {
	var sum Summary
	byType := map[string]*TypeSummary{}
	var order []string
	for _, t := range policy.Types() {
		byType[t] = &TypeSummary{Type: t, LimitDays: maxAgeDays(p, t), MeasuresUse: true}
		order = append(order, t)
	}
	statuses := map[string]int{}
	for _, r := range rows {
		ts := byType[r.Type]
		if ts == nil {
			ts = &TypeSummary{Type: r.Type, MeasuresUse: r.Type != inventory.TypeIdPSecret}
			byType[r.Type] = ts
			order = append(order, r.Type)
		}
		statuses[r.Status]++
		for _, c := range []*TypeSummary{ts, &sum.All} {
			c.Total++
			if !r.Active {
				continue
			}
			c.Active++
			switch r.AgeState {
			case policy.AgeOverdue:
				c.Overdue++
			case policy.AgeDueSoon:
				c.DueSoon++
			default:
				c.OK++
			}
			switch r.UseState {
			case policy.UseNever:
				c.NeverUsed++
			case policy.UseUnused:
				c.Unused++
			}
			if r.Compliant == CompliantYes {
				c.Compliant++
			} else {
				c.NotCompliant++
			}
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return typeOrder(order[i]) < typeOrder(order[j]) })
	for _, t := range order {
		ts := *byType[t]
		ts.Label = policy.TypeLabel(t)
		sum.Types = append(sum.Types, ts)
	}
	sum.All.Label = "All types"
	sum.All.MeasuresUse = true
	for _, st := range statusOrder {
		if n := statuses[st]; n > 0 {
			sum.Statuses = append(sum.Statuses, StatusCount{Status: st, Count: n})
			delete(statuses, st)
		}
	}
	var rest []string
	for st := range statuses {
		rest = append(rest, st)
	}
	sort.Strings(rest)
	for _, st := range rest {
		sum.Statuses = append(sum.Statuses, StatusCount{Status: st, Count: statuses[st]})
	}
	return sum
}

// ExportRequest asks for one inventory report file.
type ExportRequest struct {
	Agency models.Agency
	Format Format
	Actor  audit.Actor
	Origin audit.Origin
}

// Export is a finished inventory report file.
type Export struct {
	Format      Format
	Filename    string
	Count       int
	GeneratedAt time.Time
	Body        []byte
}

// Export builds the inventory report in the requested format and records the
// export in the agency's audit log. The file is made in full before it is
// recorded, and nothing is returned unless the record was written, so no
// report leaves the console unrecorded.
func (s *Service) Export(ctx context.Context, req ExportRequest) (Export, error) {
	if _, err := ParseFormat(string(req.Format)); err != nil {
		return Export{}, err
	}
	inv, err := s.Inventory(ctx, req.Agency)
	if err != nil {
		return Export{}, err
	}
	by := req.Actor.Name
	if by == "" {
		by = req.Actor.ID
	}
	var buf bytes.Buffer
	switch req.Format {
	case FormatCSV:
		err = WriteCSV(&buf, inv, by)
	default:
		err = WritePDF(&buf, inv, by)
	}
	if err != nil {
		return Export{}, fmt.Errorf("reports: inventory %s: %w", req.Format, err)
	}
	ex := Export{Format: req.Format, Count: len(inv.Rows), GeneratedAt: inv.GeneratedAt, Body: buf.Bytes(),
		Filename: fmt.Sprintf("inventory-%s-%s.%s", req.Agency.Slug, inv.GeneratedAt.Format("20060102T150405Z"), req.Format)}
	if err := s.cfg.Audit.Record(ctx, audit.Event{AgencyID: req.Agency.ID, Actor: req.Actor, Action: audit.ActionReportInventoryExport,
		TargetType: audit.TargetCredentialInventory, TargetID: strconv.FormatInt(req.Agency.ID, 10), TargetName: req.Agency.Name,
		Outcome: audit.OutcomeSuccess, Origin: req.Origin,
		Details: map[string]string{"format": string(req.Format), "count": strconv.Itoa(ex.Count)}}); err != nil {
		return Export{}, fmt.Errorf("reports: record export: %w", err)
	}
	return ex, nil
}
