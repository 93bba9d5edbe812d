package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// stat is the median, minimum and maximum of a measurement's runs.
type stat struct {
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Samples []float64 `json:"samples"`
}

func statOf(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Median: med, Min: s[0], Max: s[len(s)-1], Samples: xs}
}

// fmt renders "median (min–max)" with the format of one value.
func (s stat) fmt(f string) string {
	return fmt.Sprintf(f+" (%s–%s)", s.Median, fmt.Sprintf(strings.Fields(f)[0], s.Min), fmt.Sprintf(strings.Fields(f)[0], s.Max))
}

// row is one line of the results table.
type row struct {
	ID          string `json:"id"`
	What        string `json:"what"`
	Baseline    string `json:"baseline,omitempty"`
	BaselineFig string `json:"baseline_figure,omitempty"`
	MeasuredFig string `json:"measured_figure"`
	Figure      stat   `json:"figure"`
	FigureFmt   string `json:"-"`
	Unit        string `json:"unit"`
	Target      string `json:"target"`
	Met         bool   `json:"met"`
	// Info marks a figure reported for context, with no target of its own.
	Info   bool   `json:"info,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// results is one run of the suite, as written to <date>.json.
type results struct {
	Date       string    `json:"date"`
	Commit     string    `json:"commit"`
	GoVersion  string    `json:"go_version"`
	CPU        string    `json:"cpu"`
	Cores      int       `json:"cores"`
	Affinity   string    `json:"harness_affinity"`
	LoadBefore string    `json:"load_average_before"`
	LoadAfter  string    `json:"load_average_after"`
	Pinning    string    `json:"pinning"`
	Runs       int       `json:"runs"`
	Duration   string    `json:"run_duration"`
	Seed       *seedInfo `json:"seed,omitempty"`
	Rows       []row     `json:"results"`
	Errors     []string  `json:"errors,omitempty"`
	Notes      string    `json:"-"`
}

func (r results) table() string {
	var b strings.Builder
	b.WriteString("| what | baseline (same run) | baseline figure | measured | ratio or figure: median (min–max) | target | met |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, x := range r.Rows {
		met := "yes"
		switch {
		case x.Info:
			met = "(no target)"
		case !x.Met:
			met = "**no**"
		}
		fig := x.Figure.fmt(x.FigureFmt) + " " + x.Unit
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", x.What, dash(x.Baseline), dash(x.BaselineFig), x.MeasuredFig, fig, dash(x.Target), met)
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// write saves <date>[-tag].md and .json under dir.
func (r results) write(dir, tag string) (string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	name := time.Now().UTC().Format("2006-01-02")
	if tag != "" {
		name += "-" + tag
	}
	js := filepath.Join(dir, name+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(js, append(b, '\n'), 0o644); err != nil {
		return "", "", err
	}
	var m strings.Builder
	fmt.Fprintf(&m, "# keyconsole benchmark results, %s\n\n", r.Date)
	fmt.Fprintf(&m, "- commit %s, %s, %s (%d cores)\n", r.Commit, r.GoVersion, r.CPU, r.Cores)
	fmt.Fprintf(&m, "- load average (1, 5, 15 min) before: %s; after: %s. The machine is shared: absolute figures are noisy, ratios are taken between a measurement and its baseline in the same run, alternating which goes first.\n", r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(&m, "- pinning: %s.\n", r.Pinning)
	fmt.Fprintf(&m, "- every figure is the median of %d runs (min–max in brackets); a load-test run lasts %s after a 1 s unmeasured warm-up.\n", r.Runs, r.Duration)
	if r.Seed != nil {
		fmt.Fprintf(&m, "- seeded through the stores and services: %d API credentials and %d audit events (one hash chain) in Bench County, %d active SSH keys in the large database and %d in the small one.\n",
			r.Seed.Credentials, r.Seed.AuditEvents, r.Seed.SSHKeysBig, r.Seed.SSHKeysSmall)
	}
	m.WriteString("\n## Results\n\n")
	m.WriteString(r.table())
	var details []string
	for _, x := range r.Rows {
		if x.Detail != "" {
			details = append(details, fmt.Sprintf("- %s: %s.", x.ID, x.Detail))
		}
	}
	if len(details) > 0 {
		m.WriteString("\nNotes on the rows:\n\n" + strings.Join(details, "\n") + "\n")
	}
	if len(r.Errors) > 0 {
		m.WriteString("\n## Scenarios that failed to run\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&m, "- %s\n", e)
		}
	}
	if r.Notes != "" {
		m.WriteString("\n" + strings.TrimSpace(r.Notes) + "\n")
	}
	md := filepath.Join(dir, name+".md")
	if err := os.WriteFile(md, []byte(m.String()), 0o644); err != nil {
		return "", "", err
	}
	return md, js, nil
}
