package web

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/auth"
)

// TestAgencyScopeFollowsTheSessionsRoles checks the agency scope and the
// agency switcher of someone with roles in two agencies, and that an
// agency without a role, or none at all, is a 404; a change of roles shows
// on the next request.
func TestAgencyScopeFollowsTheSessionsRoles(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		st := newACStack(t, db, acOptions{})
		ctx := context.Background()
		users, sessions := models.NewUserStore(db), models.NewSessionStore(db)
		asvc := auth.NewService(db, users, models.NewAgencyStore(db), sessions, audit.NewRecorder(db, models.NewAuditStore(db), nil), auth.Config{})
		pr, token, err := asvc.SignIn(ctx, auth.ProviderInfo{ID: "okta", Kind: auth.KindOkta},
			auth.Claims{Subject: "two-agencies", Email: "two@example.gov", Name: "Two Agencies", Groups: []string{"demo-viewers", "other-admins"}}, audit.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		cookie, err := st.web.jar.encodeSessionToken(token)
		if err != nil {
			t.Fatal(err)
		}
		get := func(path string) acReply {
			req, _ := http.NewRequest(http.MethodGet, st.srv.URL+path, nil)
			req.AddCookie(&http.Cookie{Name: st.web.jar.sessionName, Value: cookie})
			return acDo(t, &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, req)
		}
		options := regexp.MustCompile(`<option value="([^"]+)"( selected)?>([^<]+)</option>`)
		role := regexp.MustCompile(`<span class="usa-tag kc-role">([^<]+)</span>`)
		for _, tc := range []struct{ slug, role string }{{"demo-county", "viewer"}, {"other-county", "admin"}} {
			r := get("/a/" + tc.slug + "/api-credentials")
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d", tc.slug, r.status)
			}
			if m := role.FindStringSubmatch(r.body); m == nil || m[1] != tc.role {
				t.Errorf("%s: role %v, want %s", tc.slug, m, tc.role)
			}
			var got []string
			for _, m := range options.FindAllStringSubmatch(r.body, -1) {
				got = append(got, m[1]+m[2]+"="+m[3])
			}
			want := []string{"demo-county=Demo County", "other-county=Other County"}
			for i := range want {
				if strings.HasPrefix(want[i], tc.slug+"=") {
					want[i] = strings.Replace(want[i], "=", " selected=", 1)
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s: switcher %v, want %v", tc.slug, got, want)
			}
		}
		for _, path := range []string{"/a/no-such-county/api-credentials", "/a/no-such-county/"} {
			if r := get(path); r.status != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", path, r.status)
			}
		}

		// Roles are resolved with the session: losing a group (as a later
		// sign-in records it) shows at once.
		if err := users.SetGroups(ctx, pr.User.ID, []string{"demo-viewers"}); err != nil {
			t.Fatal(err)
		}
		if r := get("/a/other-county/api-credentials"); r.status != http.StatusNotFound {
			t.Errorf("an agency whose role was removed: %d, want 404", r.status)
		}
		r := get("/a/demo-county/api-credentials")
		if r.status != http.StatusOK || len(options.FindAllString(r.body, -1)) != 0 {
			t.Errorf("one agency left: %d with switcher options %v, want 200 without a switcher", r.status, options.FindAllString(r.body, -1))
		}
		// Someone with a role in the other agency only is refused this one.
		if r := acGet(t, st.client(t, "other-admins"), st.srv.URL+"/a/demo-county/api-credentials"); r.status != http.StatusNotFound {
			t.Errorf("an agency without a role: %d, want 404", r.status)
		}
	})
}
