// Package views holds the console's server-rendered pages (templ components)
// and the view models they render. It imports nothing of the project but its
// own types.
package views

// AgencyRef names an agency in navigation.
type AgencyRef struct {
	Slug string
	Name string
}

// Flash is a one-time message shown at the top of the next page.
type Flash struct {
	Kind string // success, error, warning, info
	Text string
}

// Page is what every page's layout needs.
type Page struct {
	Title      string
	SignedIn   bool
	User       string
	Role       string
	IsOperator bool
	Agency     *AgencyRef
	Agencies   []AgencyRef
	CSRF       string
	Flash      *Flash
	Nav        string
	RequestID  string
	// CanAct: the user may change things here (admins); CanReview: the user
	// may read audit records and reports (reviewers and admins). The handler
	// sets both from the role's rank.
	CanAct    bool
	CanReview bool
}

// AgencyPath returns a path inside the current agency.
func (p Page) AgencyPath(rest string) string {
	if p.Agency == nil {
		return "/"
	}
	return "/a/" + p.Agency.Slug + rest
}

// NavItem is one entry of the agency navigation.
type NavItem struct {
	Key, Label, Path string
}

// AgencyNav lists the agency sections in order.
func (p Page) AgencyNav() []NavItem {
	items := []NavItem{
		{"dashboard", "Dashboard", p.AgencyPath("/")},
		{"api", "API credentials", p.AgencyPath("/api-credentials")},
		{"ssh", "SSH keys", p.AgencyPath("/ssh-keys")},
		{"webhooks", "Webhooks", p.AgencyPath("/webhooks")},
	}
	if p.CanReview {
		items = append(items, NavItem{"audit", "Audit", p.AgencyPath("/audit")}, NavItem{"reports", "Reports", p.AgencyPath("/reports")})
	}
	items = append(items, NavItem{"hygiene", "Hygiene", p.AgencyPath("/hygiene")}, NavItem{"policy", "Policy", p.AgencyPath("/policy")})
	return items
}

// FieldErrors maps form field names to messages.
type FieldErrors map[string]string
