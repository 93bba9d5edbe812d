package web

import (
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

var (
	acRowClient = regexp.MustCompile(`<tr data-credential="([^"]+)"`)
	acOlder     = func(env string) *regexp.Regexp { return regexp.MustCompile(`id="older-` + env + `" href="([^"]+)"`) }
)

// acTable returns the client ids listed in one environment's table, in
// page order.
func acTable(t *testing.T, body, env string) []string {
	t.Helper()
	i := strings.Index(body, `id="credentials-`+env+`"`)
	if i < 0 {
		return nil
	}
	end := strings.Index(body[i:], "</table>")
	var ids []string
	for _, m := range acRowClient.FindAllStringSubmatch(body[i:i+end], -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// TestAPICredentialListPagesThroughManyCredentials checks the keyset pages
// of the list: 25 credentials per environment, newest first, an Older
// link per table that keeps the other table's page, every credential on
// exactly one page, and a Newest link back.
func TestAPICredentialListPagesThroughManyCredentials(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		st := newACStack(t, db, acOptions{})
		base := st.srv.URL + "/a/demo-county/api-credentials"
		admin := st.client(t, "demo-admins")
		const staging = 60
		var created []string
		for i := range staging {
			c, _ := st.create(t, "integration "+strconv.Itoa(i), "staging")
			created = append(created, c.ClientID)
		}
		prod, _ := st.create(t, "production sync", "production")

		var seen []string
		u := base
		for page := 1; ; page++ {
			r := acGet(t, admin, u)
			if r.status != http.StatusOK {
				t.Fatalf("page %d: %d", page, r.status)
			}
			ids := acTable(t, r.body, "staging")
			want := min(25, staging-len(seen))
			if len(ids) != want {
				t.Fatalf("page %d lists %d staging credentials, want %d", page, len(ids), want)
			}
			if got := acTable(t, r.body, "production"); len(got) != 1 || got[0] != prod.ClientID {
				t.Fatalf("page %d: production table %v, want [%s]", page, got, prod.ClientID)
			}
			if page > 1 && !strings.Contains(r.body, `id="newest-staging" href="/a/demo-county/api-credentials"`) {
				t.Fatalf("page %d has no link back to the newest staging credentials", page)
			}
			seen = append(seen, ids...)
			m := acOlder("staging").FindStringSubmatch(r.body)
			if m == nil {
				break
			}
			if strings.Contains(r.body, `id="older-production"`) {
				t.Fatal("the production table of one credential offers older ones")
			}
			u = st.srv.URL + html.UnescapeString(m[1])
		}
		if len(seen) != staging {
			t.Fatalf("paging listed %d staging credentials, want %d", len(seen), staging)
		}
		for i, id := range seen {
			if want := created[staging-1-i]; id != want {
				t.Fatalf("position %d: %s, want %s (newest first, each once)", i, id, want)
			}
		}
		if r := acGet(t, admin, base+"?staging_before=not-a-number"); r.status != http.StatusOK || len(acTable(t, r.body, "staging")) != 25 {
			t.Fatalf("a malformed cursor: %d with %d rows, want the first page", r.status, len(acTable(t, r.body, "staging")))
		}
	})
}
