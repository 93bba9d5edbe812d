package security

import (
	"net/http"
	"strings"
	"testing"

	"keyconsole/e2e/harness"
)

// TestFinding03_MappingsAndDeactivationFollowLiveOnEveryReplica, through
// two real replicas on one PostgreSQL database: an operator removing a
// group mapping on replica A, or changing its role, changes what the
// admin's session may do on its next request on replica B; deactivating a
// user on A ends their session on B; an agency admin (on B) and a platform
// operator can re-enable the user, audited, and they can sign in again.
func TestFinding03_MappingsAndDeactivationFollowLiveOnEveryReplica(t *testing.T) {
	a, b := startReplicas(t)
	demo := "/a/" + harness.DemoSlug
	adminA := signedIn(t, a, harness.AdminUser())
	adminB := harness.NewClient(t, b.URL)
	adminB.SetCookies(adminA.Cookies())
	opA := signedIn(t, a, a.OperatorUser())
	viewer := harness.ViewerUser()
	viewerB := signedIn(t, b, viewer)
	f := &fixtures{c: a}
	expect := func(what string, cl *harness.Client, path, want string) {
		t.Helper()
		if got := classify(cl.Get(path)); got != want {
			t.Fatalf("%s: GET %s answered %s, want %s", what, path, got, want)
		}
	}
	operatorPost := func(path string, kv ...string) {
		t.Helper()
		tok := csrfOf(opA.Get("/operator/agencies/" + harness.DemoSlug).Body)
		if r := opA.PostForm(path, form(append([]string{"_csrf", tok}, kv...)...)); r.Status != http.StatusSeeOther {
			t.Fatalf("operator POST %s: %d\n%s", path, r.Status, r.Body)
		}
	}
	adminsMapping := func() string {
		return f.scalar(t, "SELECT CAST(m.id AS TEXT) FROM role_mappings m JOIN agencies a ON a.id = m.agency_id WHERE a.slug = ? AND m.group_value = ?", harness.DemoSlug, harness.GroupAdmins)
	}

	expect("admin before any change", adminB, demo+"/personnel", "200")
	// Remove the admins mapping on A: the admin has no role left on B.
	operatorPost("/operator/agencies/" + harness.DemoSlug + "/mappings/" + adminsMapping() + "/delete")
	expect("admin after their mapping was removed", adminB, demo+"/", "404")
	// Map the group again, as reviewer: a reviewer on the next request.
	operatorPost("/operator/agencies/"+harness.DemoSlug+"/mappings", "provider", harness.ProviderID, "group", harness.GroupAdmins, "role", "reviewer")
	expect("admin mapped as reviewer", adminB, demo+"/audit", "200")
	expect("admin mapped as reviewer", adminB, demo+"/personnel", "404")
	// Change the role back to admin (remove, add).
	operatorPost("/operator/agencies/" + harness.DemoSlug + "/mappings/" + adminsMapping() + "/delete")
	operatorPost("/operator/agencies/"+harness.DemoSlug+"/mappings", "provider", harness.ProviderID, "group", harness.GroupAdmins, "role", "admin")
	expect("admin mapped as admin again", adminB, demo+"/personnel", "200")

	// Deactivate the viewer on A: their session on B ends on its next request.
	viewerID := f.userID(t, viewer.Subject)
	review := adminA.Get(demo + "/personnel/" + viewerID)
	if review.Status != http.StatusOK {
		t.Fatalf("personnel review: %d", review.Status)
	}
	if r := adminA.PostForm(demo+"/personnel/"+viewerID, form("_csrf", csrfOf(review.Body), "deactivate", "1", "confirm", harness.DemoSlug, "reason", "left")); r.Status != http.StatusOK {
		t.Fatalf("deactivate: %d\n%s", r.Status, r.Body)
	}
	expect("deactivated viewer", viewerB, demo+"/", "signin")
	refused := func() {
		t.Helper()
		if r := signIn(t, b, harness.NewClient(t, b.URL), viewer); r.Status != http.StatusForbidden {
			t.Fatalf("deactivated viewer signs in: %d", r.Status)
		}
	}
	refused()

	// Others cannot re-enable: a reviewer, and an admin of another agency, get 404.
	enable := demo + "/personnel/" + viewerID + "/enable"
	for _, u := range []harness.User{harness.ReviewerUser()} {
		cl := signedIn(t, b, u)
		if r := cl.PostForm(enable, form("_csrf", csrfToken(t, cl))); r.Status != http.StatusNotFound {
			t.Fatalf("%s re-enables: %d", u.Subject, r.Status)
		}
	}
	refused()

	// The agency's admin re-enables on B.
	review = adminB.Get(demo + "/personnel/" + viewerID)
	if review.Status != http.StatusOK || !strings.Contains(review.Body, `id="reenable-form"`) {
		t.Fatalf("review of a deactivated user offers no re-enabling: %d", review.Status)
	}
	if r := adminB.PostForm(enable, form("_csrf", csrfOf(review.Body), "reenable_reason", "returned from leave")); r.Status != http.StatusSeeOther {
		t.Fatalf("re-enable: %d\n%s", r.Status, r.Body)
	}
	if r := signIn(t, b, harness.NewClient(t, b.URL), viewer); r.Status != http.StatusSeeOther {
		t.Fatalf("re-enabled viewer cannot sign in: %d\n%s", r.Status, r.Body)
	}
	evs := a.AuditEvents("user.enable")
	if len(evs) != 1 || evs[0].TargetID != viewerID || evs[0].Reason != "returned from leave" || evs[0].ActorName != harness.AdminUser().Name {
		t.Fatalf("re-enable audit: %+v", evs)
	}

	// Deactivated again; the platform operator re-enables from the operator pages.
	review = adminA.Get(demo + "/personnel/" + viewerID)
	if r := adminA.PostForm(demo+"/personnel/"+viewerID, form("_csrf", csrfOf(review.Body), "deactivate", "1", "confirm", harness.DemoSlug, "reason", "again")); r.Status != http.StatusOK {
		t.Fatalf("deactivate again: %d", r.Status)
	}
	refused()
	list := opA.Get("/operator/users")
	if list.Status != http.StatusOK || !strings.Contains(list.Body, viewer.Name) {
		t.Fatalf("operator's list of deactivated users: %d", list.Status)
	}
	if r := opA.PostForm("/operator/users/"+viewerID+"/enable", form("_csrf", csrfOf(list.Body), "reason", "operator check")); r.Status != http.StatusSeeOther {
		t.Fatalf("operator re-enable: %d\n%s", r.Status, r.Body)
	}
	if r := signIn(t, b, harness.NewClient(t, b.URL), viewer); r.Status != http.StatusSeeOther {
		t.Fatalf("viewer re-enabled by the operator cannot sign in: %d", r.Status)
	}
	if evs := a.AuditEvents("user.enable"); len(evs) < 2 || evs[len(evs)-1].Reason != "operator check" {
		t.Fatalf("operator re-enable audit: %+v", evs)
	}
	verifyAudit(t, a)
}
