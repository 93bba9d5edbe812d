package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"keyconsole/models"
	"keyconsole/services/agencies"
	"keyconsole/services/auth"
	"keyconsole/views"
)

// Deps are the services the handlers call.
type Deps struct {
	Logger    *slog.Logger
	Auth      *auth.Service
	Agencies  *agencies.Service
	Users     *models.UserStore
	Audit     *models.AuditStore
	Flash     Flasher
	Providers []views.ProviderChoice
	Clock     func() time.Time
	// Tiles add summary figures to the agency dashboard, one source per feature.
	Tiles []TileSource
}

// TileSource returns dashboard figures for an agency.
type TileSource func(ctx context.Context, s Scope) ([]views.DashboardTile, error)

// Handler serves every console page.
type Handler struct {
	Deps
}

// New returns the handler set.
func New(d Deps) *Handler {
	if d.Clock == nil {
		d.Clock = time.Now
	}
	return &Handler{Deps: d}
}

// maxPooledRender is the largest render buffer handed back to templ's pool;
// a larger one (a long export preview) is left to the garbage collector.
const maxPooledRender = 1 << 20

// Render writes a templ component with a status, rendering into a buffer first
// so a failed render still becomes a clean error page.
func Render(c echo.Context, status int, t templ.Component) error {
	buf := templ.GetBuffer()
	defer func() {
		if buf.Cap() <= maxPooledRender {
			templ.ReleaseBuffer(buf)
		}
	}()
	if err := t.Render(c.Request().Context(), buf); err != nil {
		return err
	}
	// The length is known: the page goes out without chunked encoding.
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(buf.Len()))
	return c.HTMLBlob(status, buf.Bytes())
}

// Page builds the layout model of the current request.
func (h *Handler) Page(c echo.Context, title, nav string) views.Page {
	p := views.Page{Title: title, Nav: nav, CSRF: CSRF(c), RequestID: c.Response().Header().Get(echo.HeaderXRequestID)}
	if h.Flash != nil {
		p.Flash = h.Flash.TakeFlash(c)
	}
	pr, ok := PrincipalOf(c)
	if !ok {
		return p
	}
	p.SignedIn = true
	p.User = pr.User.Display()
	p.IsOperator = pr.IsOperator()
	if s, ok := ScopeOf(c); ok {
		p.Agency = &views.AgencyRef{Slug: s.Agency.Slug, Name: s.Agency.Name}
		p.Role = s.Role
		p.CanAct = models.RoleRank(s.Role) >= models.RoleRank(models.RoleAdmin)
		p.CanReview = models.RoleRank(s.Role) >= models.RoleRank(models.RoleReviewer)
	}
	if list, err := h.visibleAgencies(c, pr); err == nil {
		p.Agencies = list
	}
	return p
}

// VisibleAgencies returns the agencies the principal can see, ordered by
// name: every agency for a platform operator, the agencies of their roles
// (as Resolve read them with the session) for anyone else.
func (h *Handler) VisibleAgencies(c echo.Context, pr auth.Principal) ([]models.Agency, error) {
	ctx := c.Request().Context()
	switch {
	case pr.IsOperator():
		return h.Agencies.List(ctx)
	case pr.Agencies != nil:
		return pr.Agencies, nil
	}
	return h.Agencies.ByIDs(ctx, pr.AgencyIDs())
}

func (h *Handler) visibleAgencies(c echo.Context, pr auth.Principal) ([]views.AgencyRef, error) {
	list, err := h.VisibleAgencies(c, pr)
	if err != nil {
		return nil, err
	}
	out := make([]views.AgencyRef, 0, len(list))
	for _, a := range list {
		out = append(out, views.AgencyRef{Slug: a.Slug, Name: a.Name})
	}
	return out, nil
}

// Flashf sets a one-time message for the next page.
func (h *Handler) Flashf(c echo.Context, kind, text string) {
	if h.Flash != nil {
		h.Flash.SetFlash(c, views.Flash{Kind: kind, Text: text})
	}
}

// SeeOther redirects after a successful POST.
func SeeOther(c echo.Context, path string) error { return c.Redirect(http.StatusSeeOther, path) }

// ReauthPath is the recent-sign-in page that brings the user back to
// returnTo (a local path) afterwards.
func ReauthPath(returnTo string) string { return "/auth/reauth?return_to=" + url.QueryEscape(returnTo) }

// recentOr reports whether the caller signed in recently enough for a
// sensitive action decided inside a handler (what Router.Recent does for a
// whole route); when not, the caller is sent through the provider again and
// back to returnTo, and ok is false.
func (h *Handler) recentOr(c echo.Context, returnTo string) (ok bool, err error) {
	pr, signedIn := PrincipalOf(c)
	if signedIn && h.Auth.Recent(pr) {
		return true, nil
	}
	return false, SeeOther(c, ReauthPath(returnTo))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
