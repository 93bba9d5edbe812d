package security

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"keyconsole/e2e/harness"
)

// matrixPath is the authorization matrix: every route and method of the
// console against every role and target record, with the expected answer.
const matrixPath = "../testdata/authz_matrix.json"

// recordEnv, when set to a file path, makes TestAuthorizationMatrix write
// the answers it observed in the matrix format there (to draft rows for a
// new route; every drafted answer must be reviewed before it is committed).
const recordEnv = "KEYCONSOLE_MATRIX_RECORD"

// Roles of the matrix, in the order each route is walked: the admin last,
// so the one role allowed to change a record acts after every refusal.
var matrixRoles = []string{"anonymous", "viewer", "reviewer", "operator", "other_admin", "admin"}

// Targets of a route with a record parameter: a record of the agency in the
// path, a record of another agency, and an id no record has.
var matrixTargets = []string{"own", "other", "missing"}

type matrixFile struct {
	Doc    []string      `json:"doc"`
	Roles  []string      `json:"roles"`
	Routes []matrixRoute `json:"routes"`
}

type matrixRoute struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Mode "dev" marks routes only `keyconsole dev` serves (the built-in
	// development provider); they are walked anonymously against it.
	Mode string `json:"mode,omitempty"`
	// Record names the fixture kind of the path's last :parameter.
	Record string `json:"record,omitempty"`
	// Example is the concrete path requested for a wildcard route.
	Example string `json:"example,omitempty"`
	// Form is sent (with a valid CSRF token) by state-changing requests.
	Form map[string]string `json:"form,omitempty"`
	// CSRF false marks a machine endpoint that takes no CSRF token.
	CSRF *bool `json:"csrf,omitempty"`
	// FreshSession gives every role a new session for this route (for
	// routes that end the session they are called with).
	FreshSession bool `json:"fresh_session,omitempty"`
	// Expect is the answer per role: one answer, or [own, other, missing]
	// for routes with a record.
	Expect map[string]answers `json:"expect"`
	// Note explains an answer that is not obvious.
	Note string `json:"note,omitempty"`
}

// answers is one expected answer, or three (own, other, missing).
type answers []string

func (a *answers) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = answers{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("answer must be a string or [own, other, missing]: %s", b)
	}
	*a = many
	return nil
}

func (a answers) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a answers) at(i int) string {
	if len(a) == 1 {
		return a[0]
	}
	return a[i]
}

func (r matrixRoute) key() string { return r.Method + " " + r.Path }

func (r matrixRoute) stateChanging() bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, "ANY":
		return false
	}
	return true
}

func (r matrixRoute) needsCSRF() bool { return r.stateChanging() && (r.CSRF == nil || *r.CSRF) }

func loadMatrix(t *testing.T) matrixFile {
	t.Helper()
	b, err := os.ReadFile(matrixPath)
	if err != nil {
		t.Fatalf("read the matrix: %v", err)
	}
	var m matrixFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", matrixPath, err)
	}
	if strings.Join(m.Roles, ",") != "anonymous,viewer,reviewer,admin,other_admin,operator" {
		t.Fatalf("%s: roles %v", matrixPath, m.Roles)
	}
	seen := map[string]bool{}
	for _, r := range m.Routes {
		if seen[r.Mode+" "+r.key()] {
			t.Fatalf("%s: %s listed twice", matrixPath, r.key())
		}
		seen[r.Mode+" "+r.key()] = true
		roles := matrixRoles
		if r.Mode == "dev" {
			roles = []string{"anonymous"}
		}
		for _, role := range roles {
			a, ok := r.Expect[role]
			if !ok {
				t.Fatalf("%s: %s has no answer for %s", matrixPath, r.key(), role)
			}
			if r.Record != "" && len(a) != 3 || r.Record == "" && len(a) != 1 {
				t.Fatalf("%s: %s answers for %s must be %s", matrixPath, r.key(), role, map[bool]string{true: "[own, other, missing]", false: "one value"}[r.Record != ""])
			}
		}
		if len(r.Expect) != len(roles) {
			t.Fatalf("%s: %s answers roles %v, want exactly %v", matrixPath, r.key(), r.Expect, roles)
		}
	}
	return m
}

// routeTable reads the route table a console logged at start-up (debug
// level): "METHOD PATH" -> true, without Echo's internal not-found routes.
func routeTable(t *testing.T, logs string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct{ Msg, Method, Path string }
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "route" {
			continue
		}
		if line.Method == "echo_route_not_found" {
			continue
		}
		out[line.Method+" "+line.Path] = true
	}
	if len(out) == 0 {
		t.Fatalf("the console logged no route table (is KEYCONSOLE_LOG_LEVEL=debug?)")
	}
	return out
}

// coverage fails the test for every served route the matrix has no row for,
// and for every row whose route is not served.
func coverage(t *testing.T, served map[string]bool, rows []matrixRoute, mode string) {
	t.Helper()
	covered := map[string]bool{}
	anyPaths := map[string]bool{}
	for _, r := range rows {
		if r.Mode != mode {
			continue
		}
		if r.Method == "ANY" {
			anyPaths[r.Path] = true
			continue
		}
		covered[r.key()] = true
	}
	var missing, stale []string
	for k := range served {
		_, path, _ := strings.Cut(k, " ")
		if !covered[k] && !anyPaths[path] {
			missing = append(missing, k)
		}
	}
	for k := range covered {
		if !served[k] {
			stale = append(stale, k)
		}
	}
	for p := range anyPaths {
		found := false
		for k := range served {
			found = found || strings.HasSuffix(k, " "+p)
		}
		if !found {
			stale = append(stale, "ANY "+p)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("routes served without a row in %s (add one per route and method, with the answer every role must get):\n  %s", matrixPath, strings.Join(missing, "\n  "))
	}
	if len(stale) > 0 {
		t.Errorf("rows in %s for routes that are not served:\n  %s", matrixPath, strings.Join(stale, "\n  "))
	}
}

// classify turns a response into the matrix's answer vocabulary: the status
// code, "signin" for a redirect to the sign-in page and "reauth" for one to
// the recent-sign-in page.
func classify(r harness.Response) string {
	if r.Status >= 300 && r.Status < 400 {
		loc := r.Location()
		switch {
		case strings.HasPrefix(loc, "/signin?") || loc == "/signin":
			return "signin"
		case strings.HasPrefix(loc, "/auth/reauth"):
			return "reauth"
		}
	}
	return fmt.Sprint(r.Status)
}

var requestIDs = regexp.MustCompile(`[0-9a-f]{24}`)

// normalized is a response body with request ids blanked, to compare two
// answers that must be the same.
func normalized(r harness.Response) string {
	return requestIDs.ReplaceAllString(r.Body, "REQUEST-ID")
}

// matrixConsole is the console the matrix walks, with its signed-in
// clients, record fixtures and a local webhook receiver.
type matrixConsole struct {
	c        *harness.Console
	clients  map[string]*harness.Client
	users    map[string]harness.User
	fixtures *fixtures
}

func startMatrixConsole(t *testing.T) *matrixConsole {
	t.Helper()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(receiver.Close)
	c := harness.Start(t, harness.Options{SFTP: true, Env: map[string]string{
		"KEYCONSOLE_METRICS_TOKEN":         strings.Repeat("m", 40),
		"KEYCONSOLE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
	}})
	seedAgencies(c)
	mc := &matrixConsole{c: c, clients: map[string]*harness.Client{}, users: map[string]harness.User{
		"viewer": harness.ViewerUser(), "reviewer": harness.ReviewerUser(), "admin": harness.AdminUser(),
		"other_admin": OtherAdminUser(), "operator": c.OperatorUser(),
	}}
	mc.clients["anonymous"] = harness.NewClient(t, c.URL)
	for role, u := range mc.users {
		mc.clients[role] = signedIn(t, c, u)
	}
	mc.fixtures = newFixtures(t, c, mc.clients["admin"], signedIn(t, c, OtherAdminUser()), receiver.URL)
	return mc
}

// fromNewAddr returns a client with cl's cookies whose connections leave
// from a loopback address no earlier request used.
func (mc *matrixConsole) fromNewAddr(t *testing.T, cl *harness.Client) *harness.Client {
	out := uniqueSource(t, mc.c.URL)
	out.SetCookies(cl.Cookies())
	return out
}

func (mc *matrixConsole) client(t *testing.T, r matrixRoute, role string) *harness.Client {
	if !r.FreshSession || role == "anonymous" {
		return mc.clients[role]
	}
	return signedIn(t, mc.c, mc.users[role])
}

// request builds the request of a route for one target record.
func request(t *testing.T, base string, r matrixRoute, path string, body url.Values, header http.Header) *http.Request {
	t.Helper()
	method := r.Method
	var req *http.Request
	var err error
	if r.stateChanging() {
		req, err = http.NewRequest(method, base+path, strings.NewReader(body.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest(method, base+path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return req
}

// TestAuthorizationMatrix walks testdata/authz_matrix.json against the real
// binary: every route and method, as every role (anonymous, viewer,
// reviewer, admin, another agency's admin, platform operator), on a record
// of the agency, another agency's record and a missing id. Another agency's
// record must answer exactly like a missing one, every state-changing route
// refuses a request without a valid CSRF token (none, a wrong one, or a
// valid one from another origin), and a route the console serves without a
// row in the matrix fails the test, so a new route needs a new row.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	m := loadMatrix(t)
	mc := startMatrixConsole(t)
	served := routeTable(t, mc.c.Logs())
	coverage(t, served, m.Routes, "")

	var recorded []matrixRoute
	recording := os.Getenv(recordEnv) != ""
	for _, r := range m.Routes {
		if r.Mode == "dev" {
			continue
		}
		methods := []string{r.Method}
		if r.Method == "ANY" {
			methods = nil
			for k := range served {
				if meth, p, _ := strings.Cut(k, " "); p == r.Path && meth != http.MethodConnect {
					methods = append(methods, meth)
				}
			}
			sort.Strings(methods)
		}
		for _, meth := range methods {
			rr := r
			rr.Method = meth
			t.Run(meth+" "+r.Path, func(t *testing.T) {
				obs := walkRoute(t, mc, rr, r.Expect, recording)
				if recording {
					rec := r
					rec.Expect = obs
					recorded = append(recorded, rec)
				}
			})
			if r.Method == "ANY" && recording {
				break
			}
		}
	}
	if recording {
		m.Routes = append(recorded, devRows(m.Routes)...)
		b, _ := json.MarshalIndent(m, "", "  ")
		if err := os.WriteFile(os.Getenv(recordEnv), append(b, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func devRows(rows []matrixRoute) []matrixRoute {
	var out []matrixRoute
	for _, r := range rows {
		if r.Mode == "dev" {
			out = append(out, r)
		}
	}
	return out
}

// walkRoute checks one route as every role and returns what it observed.
func walkRoute(t *testing.T, mc *matrixConsole, r matrixRoute, expect map[string]answers, recording bool) map[string]answers {
	obs := map[string]answers{}
	targets := []string{""}
	if r.Record != "" {
		targets = matrixTargets
	}
	ids := map[string]string{}
	if r.Record != "" {
		ids = mc.fixtures.ids(t, r.Record)
	}
	pathFor := func(target string) string {
		if r.Example != "" {
			return r.Example
		}
		return concretePath(t, r.Path, r.Record, ids[target])
	}
	for _, role := range matrixRoles {
		cl := mc.client(t, r, role)
		valid := csrfToken(t, cl)
		if r.needsCSRF() {
			forged := []struct {
				name   string
				token  string
				header http.Header
			}{
				{"no token", "", nil},
				{"wrong token", strings.Repeat("A", len(valid)), nil},
				{"valid token from another origin", valid, http.Header{"Origin": {"https://attacker.example"}}},
			}
			for _, f := range forged {
				body := formValues(r.Form)
				if f.token != "" {
					body.Set("_csrf", f.token)
				}
				resp := cl.Do(request(t, mc.c.URL, r, pathFor(targets[0]), body, f.header))
				if resp.Status != http.StatusForbidden {
					t.Errorf("%s %s as %s with %s: %d, want 403", r.Method, r.Path, role, f.name, resp.Status)
				}
			}
		}
		got := make(answers, len(targets))
		bodies := make([]harness.Response, len(targets))
		// Another agency's record and the missing id go first: a change to
		// the own record may leave a flash message for the next page.
		order := []int{0}
		if r.Record != "" {
			order = []int{1, 2, 0}
		}
		for _, ti := range order {
			target := targets[ti]
			body := formValues(r.Form)
			if r.stateChanging() {
				body.Set("_csrf", valid)
			}
			do := cl
			if r.CSRF != nil && !*r.CSRF {
				// A machine endpoint limits failures per source address: each
				// request leaves from its own loopback address, so the
				// matrix does not trip the limiter it is not testing.
				do = mc.fromNewAddr(t, cl)
			}
			resp := do.Do(request(t, mc.c.URL, r, pathFor(target), body, nil))
			if resp.Status >= 500 {
				t.Errorf("%s %s as %s on the %s record: %d (server error)", r.Method, pathFor(target), role, target, resp.Status)
			}
			got[ti], bodies[ti] = classify(resp), resp
			if want, ok := expect[role]; ok && !recording && got[ti] != want.at(ti) {
				t.Errorf("%s %s as %s on the %s record: %s, want %s", r.Method, pathFor(target), role, orNone(target), got[ti], want.at(ti))
			}
		}
		// Redirects to sign-in carry the requested path; anything else of
		// another agency's record must be byte for byte a missing record's.
		if r.Record != "" && got[1] == got[2] && got[1] != "signin" && got[1] != "reauth" {
			other, missing := bodies[1], bodies[2]
			if other.Location() != missing.Location() || normalized(other) != normalized(missing) {
				t.Errorf("%s %s as %s: another agency's record does not answer exactly like a missing one:\n%s\n--- missing:\n%s",
					r.Method, r.Path, role, mainOf(other), mainOf(missing))
			}
		}
		obs[role] = got
	}
	return obs
}

var mainElement = regexp.MustCompile(`(?s)<main.*</main>`)

// mainOf is the main content of a page (or the whole body), for messages.
func mainOf(r harness.Response) string {
	if m := mainElement.FindString(r.Body); m != "" {
		return m
	}
	return r.Body
}

func orNone(target string) string {
	if target == "" {
		return "(no record)"
	}
	return target
}

func formValues(f map[string]string) url.Values {
	v := url.Values{}
	for k, val := range f {
		v.Set(k, val)
	}
	return v
}

// concretePath fills a route pattern: :agency is Demo County, the last
// parameter is the target record, and the other parameters take the
// values of the record kind.
func concretePath(t *testing.T, pattern, record, id string) string {
	t.Helper()
	parts := strings.Split(pattern, "/")
	last := -1
	for i, p := range parts {
		if strings.HasPrefix(p, ":") {
			last = i
		}
	}
	for i, p := range parts {
		if !strings.HasPrefix(p, ":") {
			continue
		}
		switch {
		case p == ":agency":
			parts[i] = harness.DemoSlug
		case i == last && record != "":
			parts[i] = url.PathEscape(id)
		case p == ":slug":
			parts[i] = harness.DemoSlug
		case p == ":provider":
			parts[i] = harness.ProviderID
		default:
			t.Fatalf("route %s: no value for %s (give the row a record kind)", pattern, p)
		}
	}
	return strings.Join(parts, "/")
}

// TestDevelopmentRoutesInMatrix starts `keyconsole dev` (the built-in
// development provider) and checks that its extra routes have rows in the
// matrix and answer as listed there.
func TestDevelopmentRoutesInMatrix(t *testing.T) {
	t.Parallel()
	m := loadMatrix(t)
	dev := startDev(t)
	served := routeTable(t, dev.logs.String())
	normal := map[string]bool{}
	for _, r := range m.Routes {
		if r.Mode == "" {
			if r.Method == "ANY" {
				for k := range served {
					if strings.HasSuffix(k, " "+r.Path) {
						normal[k] = true
					}
				}
			}
			normal[r.key()] = true
		}
	}
	devOnly := map[string]bool{}
	for k := range served {
		if !normal[k] {
			devOnly[k] = true
		}
	}
	coverage(t, devOnly, m.Routes, "dev")
	cl := harness.NewClient(t, dev.url)
	for _, r := range devRows(m.Routes) {
		body := url.Values{}
		if r.stateChanging() {
			body = formValues(r.Form)
		}
		path := r.Path
		if r.Example != "" {
			path = r.Example
		}
		resp := cl.Do(request(t, dev.url, r, path, body, nil))
		if a := classify(resp); a != r.Expect["anonymous"].at(0) {
			t.Errorf("dev %s %s: %s, want %s", r.Method, path, a, r.Expect["anonymous"].at(0))
		}
	}
}
