package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"keyconsole/handlers"
	"keyconsole/models"
	"keyconsole/services/auth"
	"keyconsole/views"
)

const loginMaxAge = 10 * time.Minute

// safeReturn keeps a return_to target only when it names a page of the
// console itself, and then returns it re-encoded from its parsed form, never
// as the raw text. Browsers normalise a URL before following it (WHATWG: tabs
// and newlines dropped, a backslash read as a slash), so anything another
// parser could read differently is refused, not repaired: control characters
// (url.Parse refuses them), userinfo, a relative path, a second leading
// slash, and a path that is not clean once decoded ("//", dot segments,
// backslashes, %2f and %5c that decode to either). The target must resolve
// against the base URL to the base URL's own origin. Anything else is "/".
func (s *Server) safeReturn(raw string) string {
	const home = "/"
	if raw == "" || len(raw) > 1000 {
		return home
	}
	ref, err := url.Parse(raw)
	if err != nil || ref.User != nil || ref.Opaque != "" {
		return home
	}
	if !ref.IsAbs() && (ref.Host != "" || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//")) {
		return home
	}
	base, err := url.Parse(s.cfg.BaseURL)
	if err != nil {
		return home
	}
	u := base.ResolveReference(ref)
	if !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) || u.User != nil {
		return home
	}
	p := u.Path
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if p != clean || !strings.HasPrefix(p, "/") || strings.ContainsFunc(p, func(r rune) bool { return r == '\\' || unicode.IsControl(r) }) ||
		strings.HasPrefix(p, "/auth/") {
		return home
	}
	out := u.EscapedPath()
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}

func (s *Server) signInPage(c echo.Context) error {
	if _, ok := handlers.PrincipalOf(c); ok {
		return c.Redirect(http.StatusSeeOther, s.safeReturn(c.QueryParam("return_to")))
	}
	p := s.deps.Handlers.Page(c, "Sign in", "")
	switch c.QueryParam("reason") {
	case "idle":
		p.Flash = &views.Flash{Kind: "warning", Text: "Your session was locked after " + humanDuration(s.deps.Auth.Config().IdleTimeout) + " without activity. Sign in again."}
	case "expired":
		p.Flash = &views.Flash{Kind: "warning", Text: "Your session reached its maximum length. Sign in again."}
	case "disabled":
		p.Flash = &views.Flash{Kind: "error", Text: "Your account has been disabled in the console."}
	}
	cfg := s.deps.Auth.Config()
	return handlers.Render(c, http.StatusOK, views.SignIn(p, ProviderChoices(s.cfg.Providers), s.safeReturn(c.QueryParam("return_to")),
		humanDuration(cfg.IdleTimeout), humanDuration(cfg.AbsoluteTimeout)))
}

func (s *Server) signedOutPage(c echo.Context) error {
	return handlers.Render(c, http.StatusOK, views.SignedOut(s.deps.Handlers.Page(c, "Signed out", ""), ""))
}

// login starts the authorization-code flow for one provider.
func (s *Server) login(c echo.Context) error {
	p, ok := s.providers[c.Param("provider")]
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "not found")
	}
	return s.startLogin(c, p, s.safeReturn(c.FormValue("return_to")), false)
}

func (s *Server) startLogin(c echo.Context, p *OIDCProvider, returnTo string, reauth bool) error {
	state, err := randomString(32)
	if err != nil {
		return err
	}
	nonce, err := randomString(32)
	if err != nil {
		return err
	}
	ls := loginState{State: state, Nonce: nonce, Verifier: oauth2Verifier(), Provider: p.Info.ID, ReturnTo: returnTo, Reauth: reauth, Started: time.Now().Unix()}
	target, err := p.authURL(c.Request().Context(), ls)
	if err != nil {
		s.log.Warn("sign-in provider unavailable", "provider", p.Info.ID, "error", err)
		return s.refusedPage(c, http.StatusServiceUnavailable, "Sign-in provider unavailable", "The identity provider could not be reached. Try again in a moment.")
	}
	err = s.deps.Auth.StartAttempt(c.Request().Context(), hashState(state), p.Info.ID)
	if err != nil {
		return err
	}
	if err := s.jar.setLogin(c, ls); err != nil {
		return err
	}
	return c.Redirect(http.StatusFound, target)
}

func (s *Server) refusedPage(c echo.Context, status int, heading, message string) error {
	return handlers.Render(c, status, views.SignInRefused(s.deps.Handlers.Page(c, heading, ""), heading, message))
}

// callback finishes the flow: state bound to this browser and accepted once,
// code exchanged with the PKCE verifier, ID token and nonce verified, then the
// claims go to the sign-in rules.
func (s *Server) callback(c echo.Context) error {
	ctx := c.Request().Context()
	origin := handlers.Origin(c)
	providerID := c.Param("provider")
	p, ok := s.providers[providerID]
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "not found")
	}
	refuse := func(status int, code, subject, heading, message string) error {
		if err := s.deps.Auth.RecordRefusal(ctx, providerID, code, subject, origin); err != nil {
			return err
		}
		return s.refusedPage(c, status, heading, message)
	}
	ls, ok := s.jar.login(c)
	s.jar.clear(c, s.jar.loginName)
	state := c.QueryParam("state")
	if !ok || state == "" || ls.Provider != providerID || subtle.ConstantTimeCompare([]byte(state), []byte(ls.State)) != 1 {
		return refuse(http.StatusBadRequest, auth.RefusedState, "", "Sign-in could not be completed",
			"This sign-in response does not match a sign-in started in this browser (state mismatch or an old link). Start again from the sign-in page.")
	}
	if _, err := s.deps.Auth.ConsumeAttempt(ctx, hashState(state), loginMaxAge); err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return refuse(http.StatusBadRequest, auth.RefusedState, "", "Sign-in could not be completed",
				"This sign-in response was already used or has expired. Start again from the sign-in page.")
		}
		return err
	}
	if e := c.QueryParam("error"); e != "" {
		return refuse(http.StatusForbidden, auth.RefusedProvider, "", "Sign-in was not completed",
			"The identity provider did not sign you in ("+oauthErrorLabel(e)+").")
	}
	code := c.QueryParam("code")
	if code == "" {
		return refuse(http.StatusBadRequest, auth.RefusedProvider, "", "Sign-in could not be completed", "The identity provider returned no authorization code.")
	}
	raw, err := p.exchange(ctx, code, ls)
	if err != nil {
		var ce *errCallback
		if errors.As(err, &ce) {
			s.log.Warn("sign-in refused", "provider", providerID, "code", ce.code, "error", err)
			return refuse(http.StatusForbidden, ce.code, ce.subject, "Sign-in could not be completed", ce.message)
		}
		return err
	}
	claims, err := auth.ReadClaims(p.Info, raw)
	var rf *auth.Refusal
	if errors.As(err, &rf) {
		return refuse(http.StatusForbidden, rf.Code, claims.Subject, "Sign-in refused", rf.Message)
	}
	if err != nil {
		return err
	}
	if ls.Reauth {
		pr, ok := handlers.PrincipalOf(c)
		if !ok {
			return refuse(http.StatusForbidden, auth.RefusedState, claims.Subject, "Sign-in could not be completed", "Your session ended while you were signing in again. Sign in from the start.")
		}
		if err := s.deps.Auth.Reauthenticated(ctx, pr, claims, origin); err != nil {
			if errors.As(err, &rf) && rf.Code == auth.RefusedThrottled {
				return s.refusedPage(c, http.StatusTooManyRequests, "Sign-in paused", rf.Message)
			}
			if errors.As(err, &rf) {
				return refuse(http.StatusForbidden, rf.Code, claims.Subject, "Sign-in refused", rf.Message)
			}
			return err
		}
		return c.Redirect(http.StatusSeeOther, s.safeReturn(ls.ReturnTo))
	}
	// A new session every time: the old one (if any) is ended first.
	if old, ok := handlers.PrincipalOf(c); ok {
		_ = s.deps.Auth.SignOut(ctx, old, origin)
	}
	_, token, err := s.deps.Auth.SignIn(ctx, p.Info, claims, origin)
	if errors.As(err, &rf) {
		status := http.StatusForbidden
		heading := "Sign-in refused"
		switch rf.Code {
		case auth.RefusedNoAccess:
			heading = "No access"
		case auth.RefusedThrottled:
			status, heading = http.StatusTooManyRequests, "Sign-in paused"
		}
		return s.refusedPage(c, status, heading, rf.Message)
	}
	if err != nil {
		return err
	}
	if err := s.jar.setSessionToken(c, token); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, s.safeReturn(ls.ReturnTo))
}

func oauthErrorLabel(code string) string {
	switch code {
	case "access_denied", "login_required", "interaction_required", "consent_required", "invalid_request",
		"unauthorized_client", "server_error", "temporarily_unavailable", "invalid_scope", "account_selection_required":
		return code
	}
	return "error"
}

func (s *Server) signOut(c echo.Context) error {
	p, _ := handlers.PrincipalOf(c)
	if err := s.deps.Auth.SignOut(c.Request().Context(), p, handlers.Origin(c)); err != nil {
		return err
	}
	s.jar.clear(c, s.jar.sessionName)
	if prov, ok := s.providers[p.Provider]; ok {
		if u := prov.EndSessionURL(s.cfg.BaseURL + "/signed-out"); u != "" {
			return c.Redirect(http.StatusSeeOther, u)
		}
	}
	return c.Redirect(http.StatusSeeOther, "/signed-out")
}

func (s *Server) reauthPage(c echo.Context) error {
	p, _ := handlers.PrincipalOf(c)
	return handlers.Render(c, http.StatusOK, views.Reauth(s.deps.Handlers.Page(c, "Confirm it is you", ""), p.Provider, s.safeReturn(c.QueryParam("return_to"))))
}

func (s *Server) reauth(c echo.Context) error {
	pr, _ := handlers.PrincipalOf(c)
	p, ok := s.providers[pr.Provider]
	if !ok {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "provider not configured")
	}
	return s.startLogin(c, p, s.safeReturn(c.FormValue("return_to")), true)
}

func oauth2Verifier() string { return oauth2.GenerateVerifier() }

// humanDuration writes a timeout the way people say it ("30 minutes", "12 hours").
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s"
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	default:
		return plural(int64(d.Round(time.Second)/time.Second), "second")
	}
}
