package harness

// The demo agency SeedDemo creates and the provider groups it maps.
const (
	DemoSlug       = "demo-county"
	DemoName       = "Demo County"
	GroupAdmins    = "demo-admins"
	GroupReviewers = "demo-reviewers"
	GroupViewers   = "demo-viewers"
)

// SeedDemo creates Demo County (demo-county) through the real CLI and maps
// the mock provider's groups demo-admins, demo-reviewers and demo-viewers to
// the admin, reviewer and viewer roles there.
func (c *Console) SeedDemo() {
	c.t.Helper()
	c.MustCLI("agency", "create", DemoSlug, "--name", DemoName)
	for _, m := range []struct{ group, role string }{
		{GroupAdmins, "admin"},
		{GroupReviewers, "reviewer"},
		{GroupViewers, "viewer"},
	} {
		c.MustCLI("agency", "map", DemoSlug, "--provider", ProviderID, "--group", m.group, "--role", m.role)
	}
}

// AdminUser is Ada Admin, in the demo-admins group.
func AdminUser() User {
	return User{Subject: "e2e-admin", Email: "ada.admin@demo-county.example", EmailVerified: true, Name: "Ada Admin", Groups: []string{GroupAdmins, "all-staff"}}
}

// ReviewerUser is Rita Reviewer, in the demo-reviewers group.
func ReviewerUser() User {
	return User{Subject: "e2e-reviewer", Email: "rita.reviewer@demo-county.example", EmailVerified: true, Name: "Rita Reviewer", Groups: []string{GroupReviewers}}
}

// ViewerUser is Victor Viewer, in the demo-viewers group.
func ViewerUser() User {
	return User{Subject: "e2e-viewer", Email: "victor.viewer@demo-county.example", EmailVerified: true, Name: "Victor Viewer", Groups: []string{GroupViewers}}
}

// NobodyUser is Nora Nobody, whose groups map to nothing.
func NobodyUser() User {
	return User{Subject: "e2e-nobody", Email: "nora.nobody@elsewhere.example", EmailVerified: true, Name: "Nora Nobody", Groups: []string{"unmapped-group"}}
}

// OperatorUser is the platform operator configured for a console (by
// e-mail), with no agency group.
func (c *Console) OperatorUser() User {
	return User{Subject: "e2e-operator", Email: c.OperatorEmail, EmailVerified: true, Name: "Otto Operator", Groups: []string{"platform-ops"}}
}
