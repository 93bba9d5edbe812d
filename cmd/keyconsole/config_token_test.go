package main

import (
	"math"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"keyconsole/app/core"
)

func TestConfigTokenAddrRate(t *testing.T) {
	tests := []struct {
		value     string
		wantRate  rate.Limit
		wantBurst int
		wantErr   bool
	}{
		{"", 0, 0, false},
		{"40", 40, 200, false},
		{"inf", rate.Inf, math.MaxInt32, false},
		{"0", 0, 0, true},
		{"-3", 0, 0, true},
		{"fast", 0, 0, true},
		{"NaN", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			env := prodEnv()
			if tc.value != "" {
				env["KEYCONSOLE_TOKEN_ADDR_RATE"] = tc.value
			}
			cfg, err := loadConfig(envOf(env), false)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "KEYCONSOLE_TOKEN_ADDR_RATE") {
					t.Fatalf("%q accepted or refused without naming the variable: %v", tc.value, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q refused: %v", tc.value, err)
			}
			lc := core.TokenLimits(cfg.tokenConfig())
			if lc.AddrRate != tc.wantRate || lc.AddrBurst != tc.wantBurst {
				t.Fatalf("%q: rate %v burst %d, want %v and %d", tc.value, lc.AddrRate, lc.AddrBurst, tc.wantRate, tc.wantBurst)
			}
		})
	}
}
