package views

import (
	"context"
	"strings"
	"testing"
)

func renderChain(t *testing.T, c ChainView) string {
	t.Helper()
	var b strings.Builder
	if err := chainStatus(c).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestChainStatusSaysWhatIsKnown(t *testing.T) {
	tests := []struct {
		name      string
		c         ChainView
		want, not []string
	}{
		{"unknown", ChainView{}, []string{"could not be checked just now"}, []string{"Chain intact", "Checking"}},
		{"pending", ChainView{Known: true, Pending: true, Verifying: true}, []string{"Checking the audit chain", "Reload the page"}, []string{"Chain intact", "broken"}},
		{"intact", ChainView{Known: true, Intact: true, Records: 12, HeadSeq: 12, HeadHash: "abc", CheckedAt: "2026-11-26 05:00:00 UTC"},
			[]string{"Chain intact.", "12 records verified", "Checked 2026-11-26 05:00:00 UTC."}, []string{"newer check"}},
		{"intact, rechecking", ChainView{Known: true, Intact: true, Records: 12, HeadSeq: 12, CheckedAt: "2026-11-26 05:00:00 UTC", Verifying: true},
			[]string{"Chain intact.", "A newer check is running."}, []string{"Checking the audit chain"}},
		{"broken, rechecking", ChainView{Known: true, BreakSeq: 9, Problem: "hash mismatch", CheckedAt: "2026-11-26 05:00:00 UTC", Verifying: true},
			[]string{"Chain broken at sequence 9", "A newer check is running."}, []string{"Chain intact"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := renderChain(t, tc.c)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in %s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("unexpected %q in %s", n, got)
				}
			}
		})
	}
}
