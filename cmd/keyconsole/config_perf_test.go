package main

import (
	"strings"
	"testing"
	"time"

	"keyconsole/app/core"
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
			if _, err := core.TokenIssuer(cfg.tokenConfig(), time.Now); err != nil {
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
