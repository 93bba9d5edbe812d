package app

import (
	"errors"
	"fmt"
	"net/http"

	"keyconsole/kms"
	"keyconsole/services/webhooks"
	"keyconsole/web"
)

// errorMappers map the encryption and webhook error kinds to responses.
func errorMappers() []web.StatusMapper {
	return []web.StatusMapper{kmsErrorMapper, webhookErrorMapper}
}

func kmsErrorMapper(err error) (int, string, string, bool) {
	if errors.Is(err, kms.ErrUnavailable) {
		return http.StatusServiceUnavailable, "Encryption is unavailable",
			"The key-management service cannot be reached, so secrets cannot be read or written right now. Nothing was changed. Pages that need no secret keep working; try this again shortly.", true
	}
	if errors.Is(err, kms.ErrIntegrity) {
		return http.StatusInternalServerError, "A stored secret could not be opened",
			"A stored secret failed its integrity check. Nothing was changed. Tell your platform operator.", true
	}
	return 0, "", "", false
}

func webhookErrorMapper(err error) (int, string, string, bool) {
	switch {
	case errors.Is(err, webhooks.ErrNoSecret):
		return http.StatusConflict, "No secret", "This endpoint has no signing secret yet. Set one first.", true
	case errors.Is(err, webhooks.ErrTestLimited):
		return http.StatusTooManyRequests, "Too many test events", fmt.Sprintf(
			"This endpoint was sent %d test events in a short time, the most the console sends at once; it sends one more every %d seconds. "+
				"Nothing was sent this time. Wait a little and try again.", webhooks.TestEventBurst, int(webhooks.TestEventInterval.Seconds())), true
	case errors.Is(err, webhooks.ErrChanged):
		return http.StatusConflict, "Changed meanwhile", "The endpoint was changed by someone else at the same time. Nothing was changed; reload the page and try again.", true
	}
	return 0, "", "", false
}
