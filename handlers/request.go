package handlers

import (
	"context"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"keyconsole/services/audit"
)

// request is what a resource handler needs of the request it serves: the
// context, the agency scope, who acts and where the request came from (for
// audit records). Build it once per handler with h.req(c).
type request struct {
	ctx    context.Context
	scope  Scope
	actor  audit.Actor
	origin audit.Origin
}

// req reads the request's context, scope, actor and origin. Routes under
// /a/:agency always carry a scope and a principal; elsewhere they are zero.
func (h *Handler) req(c echo.Context) request {
	s, _ := ScopeOf(c)
	pr, _ := PrincipalOf(c)
	return request{ctx: c.Request().Context(), scope: s, actor: pr.Actor(), origin: Origin(c)}
}

// agency is the id of the request's agency, the one every store call is
// scoped to.
func (r request) agency() int64 { return r.scope.Agency.ID }

// pathID reads a record id from the path parameter name. One rule for every
// resource: an id that does not parse, or is not positive, is the same 404
// as a record that does not exist.
func pathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, ErrNotFound
	}
	return id, nil
}

// noStore keeps a response out of every cache, the browser's included: every
// page that shows a secret or echoes a submitted form sets it.
func noStore(c echo.Context) {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// agencyPath is the console path of parts under the scope's agency, each
// part one more "/part": agencyPath(s, "webhooks", "7") is
// "/a/<slug>/webhooks/7", agencyPath(s, "") the agency's dashboard
// "/a/<slug>/", and agencyPath(s) the prefix "/a/<slug>" that paths relative
// to the agency ("/api-credentials/7") are appended to.
func agencyPath(s Scope, parts ...string) string {
	var b strings.Builder
	b.WriteString("/a/")
	b.WriteString(s.Agency.Slug)
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(p)
	}
	return b.String()
}
