package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"keyconsole/kms"
	"keyconsole/models"
	"keyconsole/services/agencies"
	"keyconsole/services/apiclients"
	"keyconsole/services/audit"
	"keyconsole/services/policy"
	"keyconsole/services/sshkeys"
	"keyconsole/services/webhooks"
)

// Every service's refusals reach the user through the one mapping: refused
// input of any service is a 422, and a sentinel answers its kind's status
// with its own words.
func TestErrorResponseMapsEveryServiceKind(t *testing.T) {
	fields := map[string]string{"name": "bad"}
	_, filterErr := audit.ParseFilter(func(k string) string {
		if k == "from" {
			return "not a date"
		}
		return ""
	})
	cases := []struct {
		name    string
		err     error
		status  int
		heading string
	}{
		{"agencies", &agencies.ValidationError{Fields: fields}, http.StatusUnprocessableEntity, "Please correct the form"},
		{"apiclients", fmt.Errorf("wrapped: %w", &apiclients.ValidationError{Fields: fields}), http.StatusUnprocessableEntity, "Please correct the form"},
		{"policy", &policy.ValidationError{Fields: fields}, http.StatusUnprocessableEntity, "Please correct the form"},
		{"sshkeys", &sshkeys.ValidationError{Fields: fields}, http.StatusUnprocessableEntity, "Please correct the form"},
		{"sshkeys refusal", &sshkeys.RefusalError{Code: sshkeys.CodeDuplicate, Message: "dup"}, http.StatusUnprocessableEntity, "Please correct the form"},
		{"webhooks", &webhooks.InputError{Fields: fields}, http.StatusUnprocessableEntity, "Please correct the form"},
		{"audit filter", filterErr, http.StatusUnprocessableEntity, "Please correct the form"},
		{"webhook changed", fmt.Errorf("webhooks: set secret 1: %w: %w", webhooks.ErrChanged, models.ErrConflict), http.StatusConflict, "Changed meanwhile"},
		{"webhook no secret", fmt.Errorf("webhooks: reveal 1: %w", webhooks.ErrNoSecret), http.StatusConflict, "No secret"},
		{"webhook test limit", &webhooks.TestLimitError{}, http.StatusTooManyRequests, "Too many test events"},
		{"kms down", fmt.Errorf("secrets: put: %w", kms.ErrUnavailable), http.StatusServiceUnavailable, "Encryption is unavailable"},
		{"kms integrity", kms.ErrIntegrity, http.StatusInternalServerError, "A stored secret could not be opened"},
		{"storage full", models.ErrStorageFull, http.StatusServiceUnavailable, "Storage is full"},
		{"not found", models.ErrNotFound, http.StatusNotFound, "Page not found"},
		{"anything else", fmt.Errorf("boom"), http.StatusInternalServerError, "Something went wrong"},
	}
	if filterErr == nil {
		t.Fatal("ParseFilter accepted a bad date")
	}
	for _, tc := range cases {
		status, heading, message := ErrorResponse(tc.err)
		if status != tc.status || heading != tc.heading || message == "" {
			t.Errorf("%s: got %d %q %q, want %d %q", tc.name, status, heading, message, tc.status, tc.heading)
		}
		if strings.Contains(message, tc.err.Error()) {
			t.Errorf("%s: the message repeats the internal error text: %q", tc.name, message)
		}
	}
}
