package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"keyconsole/kms/local"
	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// TestFinding06_JWKSNeverAnswers200WithoutKeys: a replica that could not
// open the signing keys (here: the wrong master key over the same
// database) answers the JWKS with 503, uncached, instead of an empty key
// set resource servers would cache; the replica with the keys publishes
// them.
func TestFinding06_JWKSNeverAnswers200WithoutKeys(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *models.DB) {
		good := newACStack(t, db, acOptions{})
		kr, err := local.New(bytes.Repeat([]byte{8}, local.MasterKeySize), "")
		if err != nil {
			t.Fatal(err)
		}
		wrong := newACStack(t, db, acOptions{Keyring: kr, Agencies: &[2]models.Agency{good.demo, good.other}})
		if wrong.keys.Ready() {
			t.Fatal("signing keys loaded with the wrong master key")
		}
		get := func(st acStack) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			st.web.Echo.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
			return rec
		}
		r := get(wrong)
		if r.Code != http.StatusServiceUnavailable || r.Header().Get("Cache-Control") != "no-store" || r.Header().Get("Retry-After") == "" ||
			strings.Contains(r.Body.String(), `"keys"`) || !strings.Contains(r.Body.String(), `"error":"temporarily_unavailable"`) {
			t.Fatalf("JWKS without keys: %d %v %s", r.Code, r.Header(), r.Body)
		}
		r = get(good)
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		if r.Code != http.StatusOK || json.Unmarshal(r.Body.Bytes(), &set) != nil || len(set.Keys) == 0 || set.Keys[0].Kid == "" {
			t.Fatalf("JWKS with keys: %d %s", r.Code, r.Body)
		}
	})
}
