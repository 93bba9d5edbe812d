package security

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"keyconsole/e2e/harness"
)

// missingID is an id no record has.
const missingID = "999999999"

// fixtures makes the records the matrix targets, through the console's own
// forms as each agency's admin, so they are real records of the feature.
type fixtures struct {
	c        *harness.Console
	admin    *harness.Client // Demo County's admin
	other    *harness.Client // Other County's admin
	receiver string          // a local webhook receiver (127.0.0.1)
	seq      atomic.Int64
	shared   map[string]map[string]string
}

func newFixtures(t *testing.T, c *harness.Console, admin, other *harness.Client, receiver string) *fixtures {
	return &fixtures{c: c, admin: admin, other: other, receiver: receiver, shared: map[string]map[string]string{}}
}

// ids returns the own, other and missing values of a record kind. Kinds a
// route may change get fresh records on every call.
func (f *fixtures) ids(t *testing.T, kind string) map[string]string {
	t.Helper()
	if ids, ok := f.shared[kind]; ok {
		return ids
	}
	var own, other, missing string
	shared := false
	switch kind {
	case "api_credential":
		own = strconv.FormatInt(createAPICredential(t, f.admin, harness.DemoSlug, f.name("Matrix"), "staging").ID, 10)
		other = strconv.FormatInt(createAPICredential(t, f.other, OtherSlug, f.name("Matrix"), "staging").ID, 10)
		missing = missingID
	case "ssh_account":
		own, other, missing = f.sshAccount(t, f.admin, harness.DemoSlug), f.sshAccount(t, f.other, OtherSlug), missingID
		shared = true
	case "ssh_key":
		own, other, missing = f.sshKey(t, f.admin, harness.DemoSlug), f.sshKey(t, f.other, OtherSlug), missingID
	case "webhook":
		own, other, missing = f.webhook(t, f.admin, harness.DemoSlug), f.webhook(t, f.other, OtherSlug), missingID
	case "audit_event":
		own, other, missing = f.firstEvent(t, harness.DemoSlug), f.firstEvent(t, OtherSlug), missingID
		shared = true
	case "operation":
		own, other = f.operation(t, f.admin, harness.DemoSlug), f.operation(t, f.other, OtherSlug)
		missing = strings.Repeat("0", len(own))
		shared = true
	case "member":
		own, other, missing = f.userID(t, harness.ViewerUser().Subject), f.userID(t, OtherAdminUser().Subject), missingID
		shared = true
	case "agency":
		own, other, missing = harness.DemoSlug, OtherSlug, "no-such-county"
		shared = true
	case "mapping":
		own, other, missing = f.mapping(t, harness.DemoSlug), f.mapping(t, OtherSlug), missingID
	default:
		t.Fatalf("matrix: unknown record kind %q (add its fixture to matrix_fixtures_test.go)", kind)
	}
	ids := map[string]string{"own": own, "other": other, "missing": missing}
	if shared {
		f.shared[kind] = ids
	}
	return ids
}

func (f *fixtures) name(prefix string) string {
	return fmt.Sprintf("%s %d", prefix, f.seq.Add(1))
}

func (f *fixtures) scalar(t *testing.T, query string, args ...any) string {
	t.Helper()
	var v string
	if err := f.c.DB().Gorm.Raw(query, args...).Scan(&v).Error; err != nil || v == "" {
		t.Fatalf("matrix fixture: %s %v: %q %v", query, args, v, err)
	}
	return v
}

// sshAccount creates the agency's staging SFTP account (once) and returns its id.
func (f *fixtures) sshAccount(t *testing.T, cl *harness.Client, slug string) string {
	t.Helper()
	id, _ := createSFTPAccount(t, cl, f.c, slug, "stg")
	return strconv.FormatInt(id, 10)
}

// sshKey uploads a fresh key to the agency's staging account and returns its id.
func (f *fixtures) sshKey(t *testing.T, cl *harness.Client, slug string) string {
	t.Helper()
	acc := f.ids(t, "ssh_account")["own"]
	if slug != harness.DemoSlug {
		acc = f.ids(t, "ssh_account")["other"]
	}
	id, err := strconv.ParseInt(acc, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	signer := newSSHSigner(t)
	return strconv.FormatInt(uploadSSHKey(t, cl, f.c, slug, id, signer.PublicKey(), strings.ReplaceAll(f.name("matrix-key"), " ", "-")), 10)
}

var webhookIDLink = regexp.MustCompile(`/webhooks/(\d+)`)

// webhook adds an endpoint delivering to the local receiver and returns its id.
func (f *fixtures) webhook(t *testing.T, cl *harness.Client, slug string) string {
	t.Helper()
	page := cl.Get("/a/" + slug + "/webhooks/new")
	if page.Status != http.StatusOK {
		t.Fatalf("GET webhooks/new in %s: %d", slug, page.Status)
	}
	name := f.name("Matrix hook")
	r := cl.PostForm("/a/"+slug+"/webhooks", form("_csrf", csrfOf(page.Body), "name", name, "environment", "staging",
		"url", f.receiver+"/hook", "events", "court_date.scheduled", "secret_source", "generate"))
	if r.Status != http.StatusOK {
		t.Fatalf("create webhook in %s: %d\n%s", slug, r.Status, r.Body)
	}
	return f.scalar(t, "SELECT id FROM webhook_endpoints WHERE name = ?", name)
}

func (f *fixtures) firstEvent(t *testing.T, slug string) string {
	t.Helper()
	return f.scalar(t, "SELECT MIN(id) FROM audit_events WHERE agency_id = ?", agencyIDOf(t, f.c, slug))
}

func (f *fixtures) userID(t *testing.T, subject string) string {
	t.Helper()
	return f.scalar(t, "SELECT id FROM users WHERE provider = ? AND subject = ?", harness.ProviderID, subject)
}

// operation revokes a fresh credential through the hygiene bulk revocation
// and returns the operation id the console redirects to.
func (f *fixtures) operation(t *testing.T, cl *harness.Client, slug string) string {
	t.Helper()
	cr := createAPICredential(t, cl, slug, f.name("Matrix bulk"), "staging")
	item := "api_credential:" + strconv.FormatInt(cr.ID, 10)
	page := cl.Get("/a/" + slug + "/hygiene/revoke?item=" + item)
	if page.Status != http.StatusOK {
		t.Fatalf("GET hygiene/revoke in %s: %d %s", slug, page.Status, page.Location())
	}
	r := cl.PostForm("/a/"+slug+"/hygiene/revoke", form("_csrf", csrfOf(page.Body), "item", item, "confirm", slug, "reason", "matrix"))
	op, ok := strings.CutPrefix(r.Location(), "/a/"+slug+"/operations/")
	if r.Status != http.StatusSeeOther || !ok || op == "" {
		t.Fatalf("bulk revocation in %s: %d %q\n%s", slug, r.Status, r.Location(), r.Body)
	}
	return op
}

// mapping adds a throwaway group mapping to an agency and returns its id.
func (f *fixtures) mapping(t *testing.T, slug string) string {
	t.Helper()
	group := strings.ReplaceAll(f.name("matrix-group"), " ", "-")
	f.c.MustCLI("agency", "map", slug, "--provider", harness.ProviderID, "--group", group, "--role", "viewer")
	return f.scalar(t, "SELECT id FROM role_mappings WHERE group_value = ?", group)
}
