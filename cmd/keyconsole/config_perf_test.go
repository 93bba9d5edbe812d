package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"keyconsole/web"
)

func TestConfigTokenReuse(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", time.Minute, false},
		{"0", 0, false},
		{"0s", 0, false},
		{"30s", 30 * time.Second, false},
		{"90s", 90 * time.Second, false},
		{"91s", 0, true},
		{"-1s", 0, true},
		{"soon", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			env := prodEnv()
			if tc.value != "" {
				env["KEYCONSOLE_TOKEN_REUSE"] = tc.value
			}
			cfg, err := loadConfig(envOf(env), false)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "KEYCONSOLE_TOKEN_REUSE") {
					t.Fatalf("%q accepted or refused without naming the variable: %v", tc.value, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q refused: %v", tc.value, err)
			}
			if cfg.TokenReuse != tc.want {
				t.Fatalf("%q: reuse %s, want %s", tc.value, cfg.TokenReuse, tc.want)
			}
			if _, err := tokenIssuer(cfg, time.Now); err != nil {
				t.Fatalf("%q: the issuer refuses the configured reuse: %v", tc.value, err)
			}
		})
	}
}

func TestConfigProfilingNeedsTheMetricsAddress(t *testing.T) {
	const token = "metrics-bearer-token-0123456789abcdef"
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{"off by default", map[string]string{}, false},
		{"without the metrics address", map[string]string{"KEYCONSOLE_PROFILING": "true"}, true},
		{"production without the token", map[string]string{"KEYCONSOLE_PROFILING": "true", "KEYCONSOLE_METRICS_ADDR": "127.0.0.1:9100"}, true},
		{"production with the token", map[string]string{"KEYCONSOLE_PROFILING": "true", "KEYCONSOLE_METRICS_ADDR": "127.0.0.1:9100", "KEYCONSOLE_METRICS_TOKEN": token}, false},
		{"not a boolean", map[string]string{"KEYCONSOLE_PROFILING": "yes please", "KEYCONSOLE_METRICS_ADDR": "127.0.0.1:9100"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := prodEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := loadConfig(envOf(env), false)
			if tc.wantErr != (err != nil) || err != nil && !strings.Contains(err.Error(), "KEYCONSOLE_PROFILING") {
				t.Fatalf("error %v, want an error naming KEYCONSOLE_PROFILING: %v", err, tc.wantErr)
			}
		})
	}
}

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
	off := metricsMux(&config{MetricsToken: token}, m)
	if code := get(t, off, "/debug/pprof/", token); code != http.StatusNotFound {
		t.Fatalf("profiles off: /debug/pprof/ answered %d", code)
	}
	if code := get(t, off, "/metrics", token); code != http.StatusOK {
		t.Fatalf("/metrics with the token: %d", code)
	}
	on := metricsMux(&config{MetricsToken: token, Profiling: true}, m)
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
