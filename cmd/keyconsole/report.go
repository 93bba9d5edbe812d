package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"keyconsole/app/core"
	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/inventory"
	"keyconsole/services/reports"
)

const reportUsage = "usage: keyconsole report inventory --agency SLUG --format csv|pdf [--output FILE]"

// cmdReport runs `keyconsole report inventory`: the agency's credential
// inventory as CSV or PDF, to a file (mode 0600) or standard output. The
// export is recorded in the agency's audit log like a download from the
// Reports page.
func cmdReport(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "inventory" {
		if len(args) > 0 {
			return usageError{fmt.Sprintf("unknown report %q\n%s", args[0], reportUsage)}
		}
		return usageError{reportUsage}
	}
	fs := flag.NewFlagSet("report inventory", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	slug := fs.String("agency", "", "agency slug")
	format := fs.String("format", "", "csv or pdf")
	output := fs.String("output", "", "file to write (default: standard output)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error() + "\n" + reportUsage}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q\n%s", fs.Arg(0), reportUsage)}
	}
	if *slug == "" {
		return usageError{"report inventory needs --agency SLUG"}
	}
	fm, err := reports.ParseFormat(*format)
	if err != nil {
		return usageError{"--format must be csv or pdf"}
	}
	cfg, err := loadToolConfig(lookupEnv)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, slog.New(slog.DiscardHandler), true)
	if err != nil {
		return err
	}
	defer a.close()
	agency, err := a.agencies.BySlug(ctx, *slug)
	if err != nil {
		return fmt.Errorf("agency %q: %w", *slug, err)
	}
	// The IdP client secrets of every provider the console can sign in
	// with: the configured ones, and the built-in one outside production.
	var providers []inventory.Provider
	if !cfg.production() {
		providers = append(providers, inventory.Provider{ID: "dev", Label: "Development sign-in", Kind: "dev"})
	}
	for _, p := range cfg.Providers {
		providers = append(providers, inventory.Provider{ID: p.ID, Label: p.Label, Kind: p.Kind})
	}
	ex, err := newReports(a.core, providers).Export(ctx, reports.ExportRequest{
		Agency: agency, Format: fm, Actor: cliActor(), Origin: audit.Origin{RequestID: "cli"},
	})
	if err != nil {
		return err
	}
	dest := "standard output"
	if *output == "" {
		if _, err := stdout.Write(ex.Body); err != nil {
			return fmt.Errorf("output: %w", err)
		}
	} else {
		if err := writeFileAtomic(*output, ex.Body); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		dest = *output
	}
	fmt.Fprintf(stderr, "exported the inventory of %s (%d credentials) as %s to %s\n", agency.Slug, ex.Count, fm, dest)
	return nil
}

// newReports builds the reports service for the command line over an
// inventory of every credential kind, each read through its own service.
// Listing needs no secret, so none is built (the command line reads no KMS).
func newReports(c core.Core, providers []inventory.Provider) *reports.Service {
	pol := core.NewPolicies(c)
	inv := core.NewInventory(c, pol, models.NewPolicyStore(c.DB),
		core.NewAPIClients(c, nil, pol),
		core.NewSSHKeys(c, models.NewSSHKeyStore(c.DB), pol),
		core.NewWebhooks(c, nil, pol, core.WebhookConfig{}),
		providers)
	return core.NewReports(c, inv, pol)
}

// writeFileAtomic writes b to path through a temporary file in the same
// directory, readable by the owner only, so a reader never sees half a file.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
