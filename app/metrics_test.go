package app

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"keyconsole/web"
)

func TestMetricsAddressServesProfilesOnlyWhenAskedAndOnlyWithTheToken(t *testing.T) {
	const token = "metrics-bearer-token-0123456789abcdef"
	get := func(t *testing.T, h http.Handler, path, bearer string) int {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	m := web.NewMetrics()
	off := metricsMux(MetricsConfig{Token: token}, m)
	if code := get(t, off, "/debug/pprof/", token); code != http.StatusNotFound {
		t.Fatalf("profiles off: /debug/pprof/ answered %d", code)
	}
	if code := get(t, off, "/metrics", token); code != http.StatusOK {
		t.Fatalf("/metrics with the token: %d", code)
	}
	on := metricsMux(MetricsConfig{Token: token, Profiling: true}, m)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"} {
		if code := get(t, on, path, ""); code != http.StatusUnauthorized {
			t.Fatalf("%s without the token: %d", path, code)
		}
		if code := get(t, on, path, "wrong-"+token); code != http.StatusUnauthorized {
			t.Fatalf("%s with a wrong token: %d", path, code)
		}
	}
	if code := get(t, on, "/debug/pprof/heap", token); code != http.StatusOK {
		t.Fatalf("/debug/pprof/heap with the token: %d", code)
	}
}
