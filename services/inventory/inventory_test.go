package inventory_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"keyconsole/services/inventory"
	"keyconsole/services/policy"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func at(d time.Duration) *time.Time {
	t := now.Add(-d)
	return &t
}

func TestEvaluateGroupsAtBoundaries(t *testing.T) {
	p := policy.Default() // api 90, ssh 365, webhook 180, due soon 14, unused 90, IdP warning 30
	item := func(typ string, id int64, age time.Duration, used *time.Time) inventory.Item {
		return inventory.Item{Type: typ, ID: id, Name: typ, Status: inventory.StatusActive, CreatedAt: now.Add(-age), LastUsedAt: used}
	}
	idp := func(id int64, expiresIn time.Duration) inventory.Item {
		exp := now.Add(expiresIn)
		return inventory.Item{Type: inventory.TypeIdPSecret, ID: id, Name: "idp", Status: inventory.StatusActive, CreatedAt: now.Add(-400 * day), ExpiresAt: &exp}
	}
	revoked := item(policy.TypeAPICredential, 99, 400*day, nil)
	revoked.Status = inventory.StatusRevoked
	rotated := item(policy.TypeAPICredential, 98, 400*day, at(time.Hour))
	rotated.RotatedAt = at(10 * day)
	items := []inventory.Item{
		item(policy.TypeAPICredential, 1, 90*day, at(time.Hour)),           // overdue exactly at the limit
		item(policy.TypeAPICredential, 2, 90*day-time.Second, at(day)),     // due soon one second before
		item(policy.TypeAPICredential, 3, 76*day, at(day)),                 // due soon exactly 14 days before
		item(policy.TypeAPICredential, 4, 76*day-time.Second, at(day)),     // ok one second before the window
		item(policy.TypeSSHKey, 5, 90*day, nil),                            // never used, exactly at the threshold
		item(policy.TypeSSHKey, 6, 90*day-time.Second, nil),                // young, not flagged yet
		item(policy.TypeSSHKey, 7, 200*day, at(90*day)),                    // unused exactly at the threshold
		item(policy.TypeWebhookSecret, 8, 200*day, at(90*day-time.Second)), // used just in time, overdue by age
		revoked,
		rotated,
		idp(10, 30*day),             // due soon: exactly the warning window
		idp(11, 30*day+time.Second), // ok
		idp(12, 0),                  // lapsed at this instant
	}
	r := inventory.Evaluate(items, p, now)
	keys := func(rows []inventory.Row) string {
		var out []string
		for _, row := range rows {
			out = append(out, row.Key())
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		name string
		got  []inventory.Row
		want string
	}{
		{"overdue", r.Overdue, "api_credential:1 idp_secret:12 webhook_secret:8"},
		{"due soon", r.DueSoon, "api_credential:2 api_credential:3 idp_secret:10"},
		{"never used", r.NeverUsed, "ssh_key:5"},
		{"unused", r.Unused, "ssh_key:7"},
	}
	for _, tt := range tests {
		if got := keys(tt.got); !sameSet(got, tt.want) {
			t.Errorf("%s = %q, want %q", tt.name, got, tt.want)
		}
	}
	if len(r.All) != len(items)-1 {
		t.Errorf("all = %d items, want every active one (%d)", len(r.All), len(items)-1)
	}
	for _, row := range r.All {
		if row.Key() == "api_credential:99" {
			t.Errorf("a revoked credential was evaluated")
		}
		if row.Key() == "api_credential:98" && row.Eval.AgeState != policy.AgeOK {
			t.Errorf("a credential rotated 10 days ago is %s", row.Eval.AgeState)
		}
	}
	if r.Count() != 8 {
		t.Errorf("count = %d, want 8 distinct credentials needing attention", r.Count())
	}

	// A stored CJIS policy moves the boundaries.
	cjis, _ := policy.PresetByID(policy.PresetCJIS)
	r = inventory.Evaluate(items, policy.Default().WithPreset(cjis), now)
	if got := keys(r.Overdue); !sameSet(got, "idp_secret:12") {
		t.Errorf("CJIS overdue = %q, want only the lapsed IdP secret", got)
	}
}

func sameSet(a, b string) bool {
	as, bs := strings.Fields(a), strings.Fields(b)
	if len(as) != len(bs) {
		return false
	}
	m := map[string]int{}
	for _, s := range as {
		m[s]++
	}
	for _, s := range bs {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestAgeChartSVG(t *testing.T) {
	p := policy.Default()
	items := []inventory.Item{
		{Type: policy.TypeAPICredential, ID: 1, Name: `<script>alert("x")</script> & co`, Status: inventory.StatusActive, CreatedAt: now.Add(-120 * day)},
		{Type: policy.TypeAPICredential, ID: 2, Name: "young", Status: inventory.StatusActive, CreatedAt: now.Add(-10 * day)},
		{Type: policy.TypeAPICredential, ID: 3, Name: "gone", Status: inventory.StatusRevoked, CreatedAt: now.Add(-500 * day)},
		{Type: policy.TypeSSHKey, ID: 4, Name: "key", Status: inventory.StatusActive, CreatedAt: now.Add(-355 * day)},
	}
	svg := inventory.AgeChartSVG(items, p, now)

	// Well-formed XML with the accessible name and description.
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var root *xml.StartElement
	var title, desc strings.Builder
	var in string
	marks := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v\n%s", err, svg)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == nil {
				e := el.Copy()
				root = &e
			}
			in = el.Name.Local
			if in == "title" {
				marks++
			}
		case xml.CharData:
			switch in {
			case "title":
				title.Write(el)
			case "desc":
				desc.Write(el)
			}
		case xml.EndElement:
			in = ""
		}
	}
	attrs := map[string]string{}
	for _, a := range root.Attr {
		attrs[a.Name.Local] = a.Value
	}
	if root.Name.Local != "svg" || attrs["role"] != "img" || attrs["aria-labelledby"] != "kc-age-chart-title kc-age-chart-desc" {
		t.Fatalf("root = %s %v", root.Name.Local, attrs)
	}
	// One title for the chart plus one per active credential's mark.
	if marks != 1+3 {
		t.Errorf("titles = %d, want the chart's and one per active credential (4)", marks)
	}
	for _, want := range []string{
		"API credentials: 2 active, oldest 120 days, median 65 days, limit 90 days, 0 due soon, 1 overdue.",
		"SSH keys: 1 active, oldest 355 days, median 355 days, limit 365 days, 1 due soon, 0 overdue.",
		"Webhook secrets: none active; limit 180 days.",
	} {
		if !strings.Contains(desc.String(), want) {
			t.Errorf("desc %q lacks %q", desc.String(), want)
		}
	}
	if !strings.Contains(title.String(), `<script>alert("x")</script> & co: 120 days, overdue`) {
		t.Errorf("a mark's title does not carry the name and state: %q", title.String())
	}
	if bytes.Contains(svg, []byte("<script>")) || bytes.Contains(svg, []byte("style=")) {
		t.Errorf("chart carries markup from a name or an inline style")
	}

	rows := inventory.AgeChartRows(items, p, now)
	if len(rows) != 3 || rows[0].Count != 2 || rows[0].Overdue != 1 || rows[1].DueSoon != 1 || rows[2].Count != 0 || rows[2].LimitDays != 180 {
		t.Errorf("rows = %+v", rows)
	}
}

func TestSecretRedacts(t *testing.T) {
	s := inventory.NewSecret("ecd_stg_sec_very_secret")
	if got := fmt.Sprintf("%v %s %+v %#v %q %x", s, s, s, s, s, s) + s.String(); strings.Contains(got, "very_secret") {
		t.Fatalf("secret printed: %q", got)
	}
	b, _ := s.MarshalJSON()
	if strings.Contains(string(b), "very_secret") || s.LogValue().String() != "[redacted]" {
		t.Fatalf("secret leaks through JSON or slog")
	}
	if s.Reveal() != "ecd_stg_sec_very_secret" {
		t.Fatalf("reveal lost the value")
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in   string
		typ  string
		id   int64
		good bool
	}{
		{"api_credential:12", "api_credential", 12, true},
		{"ssh_key:0", "", 0, false},
		{"ssh_key:-3", "", 0, false},
		{":3", "", 0, false},
		{"webhook_secret:x", "", 0, false},
		{"nocolon", "", 0, false},
	}
	for _, tt := range tests {
		typ, id, ok := inventory.ParseKey(tt.in)
		if ok != tt.good || typ != tt.typ || id != tt.id {
			t.Errorf("ParseKey(%q) = %q %d %v", tt.in, typ, id, ok)
		}
	}
}
