package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"keyconsole/handlers"
	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/validation"
	"keyconsole/views"
)

// errorHandler is the one place errors become responses. The browser sees a
// status, a plain message and the request id, never an internal error text.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, heading, message := ErrorResponse(err)
	if errors.Is(err, models.ErrStorageFull) && status == http.StatusServiceUnavailable {
		s.log.Debug("request refused: storage is full", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "path", c.Request().URL.Path)
	} else if status >= 500 {
		s.log.Error("request failed", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "path", c.Request().URL.Path, "status", status, "error", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if wantsJSON(c) {
		_ = c.JSON(status, map[string]string{"error": heading, "request_id": c.Response().Header().Get(echo.HeaderXRequestID)})
		return
	}
	p := s.deps.Handlers.Page(c, heading, "")
	if rerr := handlers.Render(c, status, views.ErrorPage(p, status, heading, message)); rerr != nil {
		_ = c.String(status, heading)
	}
}

// ErrorResponse is the status, heading and message the console answers err
// with. It is the only place that knows status codes of errors: services
// return errors that unwrap to a general kind (models.ErrNotFound,
// models.ErrConflict, models.ErrLimited, kms.ErrUnavailable, a
// *validation.Error, ...), and a *models.Refusal brings its own heading and
// message for its kind's status.
func ErrorResponse(err error) (status int, heading, message string) {
	status, heading, message = http.StatusInternalServerError, "Something went wrong", "The console could not complete this request. Nothing was changed."
	var he *echo.HTTPError
	var ve *validation.Error
	var rf *models.Refusal
	switch {
	case errors.Is(err, kms.ErrUnavailable):
		status, heading, message = http.StatusServiceUnavailable, "Encryption is unavailable",
			"The key-management service cannot be reached, so secrets cannot be read or written right now. Nothing was changed. Pages that need no secret keep working; try this again shortly."
	case errors.Is(err, kms.ErrIntegrity):
		heading, message = "A stored secret could not be opened",
			"A stored secret failed its integrity check. Nothing was changed. Tell your platform operator."
	case errors.As(err, &rf) && kindStatus(rf) != 0:
		status, heading, message = kindStatus(rf), rf.Heading, rf.Message
	case errors.As(err, &he):
		status = he.Code
		switch he.Code {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			status, heading, message = http.StatusNotFound, "Page not found", "There is no such page, or you do not have access to it."
		case http.StatusForbidden:
			heading, message = "Not allowed", "You are not allowed to do this. If you submitted a form, reload the page and try again."
		case http.StatusUnauthorized:
			heading, message = "Sign in required", "Your session has ended. Sign in again."
		case http.StatusRequestEntityTooLarge:
			heading, message = "Too large", "The request is larger than the console accepts."
		case http.StatusBadRequest:
			heading, message = "Bad request", "The request could not be understood."
		case http.StatusTooManyRequests:
			heading, message = "Too many requests", "Slow down and try again shortly."
		case http.StatusServiceUnavailable:
			heading, message = "Temporarily unavailable", "A service the console depends on is unavailable. Try again shortly."
		default:
			if he.Code < 500 {
				heading, message = http.StatusText(he.Code), "The request could not be completed."
			}
		}
	case errors.Is(err, errFormUnreadable):
		status, heading, message = http.StatusBadRequest, "Form not accepted",
			"The form could not be read: it is malformed or has more fields than the console accepts (10,000). Nothing was changed."
	case errors.As(err, &ve):
		status, heading, message = http.StatusUnprocessableEntity, "Please correct the form", "Some fields were not accepted."
	case errors.Is(err, models.ErrStorageFull):
		// Logged once per episode by the database's storage hook, not
		// once per refused request.
		status, heading, message = http.StatusServiceUnavailable, "Storage is full",
			"The console's storage is full; nothing was changed. Pages that only read keep working. Tell your platform operator, and try again once space is freed."
	case errors.Is(err, models.ErrNotFound):
		status, heading, message = http.StatusNotFound, "Page not found", "There is no such page, or you do not have access to it."
	case isUnavailable(err):
		status, heading, message = http.StatusServiceUnavailable, "Temporarily unavailable", "The database is unavailable. Nothing was changed; try again shortly."
	}
	return status, heading, message
}

// kindStatus is the status of a refusal's general kind, or 0 for a kind
// answered like any other error.
func kindStatus(rf *models.Refusal) int {
	switch {
	case errors.Is(rf, models.ErrConflict):
		return http.StatusConflict
	case errors.Is(rf, models.ErrLimited):
		return http.StatusTooManyRequests
	}
	return 0
}

func wantsJSON(c echo.Context) bool {
	p := c.Request().URL.Path
	return p == "/readyz" || p == "/healthz" || strings.HasPrefix(p, "/.well-known/") || strings.HasPrefix(p, "/oauth/")
}
