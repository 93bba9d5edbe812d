package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
)

const auditUsage = "usage: keyconsole audit verify [--agency SLUG] | audit export --agency SLUG --format csv|jsonl|pdf [--from --to --action --actor --target-type --target --outcome] [--output FILE] | audit purge --agency SLUG --before DATE [--yes]"

// cmdAudit runs `keyconsole audit verify|export|purge`.
func cmdAudit(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{auditUsage}
	}
	fs := flag.NewFlagSet("audit "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	slug := fs.String("agency", "", "agency slug")
	format := fs.String("format", "", "csv, jsonl or pdf")
	output := fs.String("output", "", "file to write (default: standard output)")
	before := fs.String("before", "", "remove records older than this UTC date")
	yes := fs.Bool("yes", false, "really remove the records")
	filter := map[string]*string{}
	for _, k := range audit.FilterKeys() {
		filter[k] = fs.String(strings.ReplaceAll(k, "_", "-"), "", "filter: "+k)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error() + "\n" + auditUsage}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q\n%s", fs.Arg(0), auditUsage)}
	}
	switch args[0] {
	case "verify", "export", "purge":
	default:
		return usageError{fmt.Sprintf("unknown audit command %q\n%s", args[0], auditUsage)}
	}
	if args[0] != "verify" && *slug == "" {
		return usageError{"audit " + args[0] + " needs --agency SLUG"}
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
	var agency models.Agency
	if *slug != "" {
		if agency, err = a.agencies.BySlug(ctx, *slug); err != nil {
			return fmt.Errorf("agency %q: %w", *slug, err)
		}
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, a, agency, stdout)
	case "export":
		f, err := audit.ParseFilter(func(k string) string { return *filter[k] })
		if err != nil {
			return err
		}
		fm, err := audit.ParseFormat(*format)
		if err != nil {
			return usageError{"--format must be csv, jsonl or pdf"}
		}
		return auditExport(ctx, a, agency, f, fm, *output, stdout, stderr)
	default:
		if *before == "" {
			return usageError{"audit purge needs --before DATE (UTC, e.g. 2025-01-01)"}
		}
		t, _, err := audit.ParseTime(*before)
		if err != nil {
			return usageError{"--before: " + err.Error()}
		}
		return auditPurge(ctx, a, agency, t, *yes, stdout)
	}
}

// errChainBroken makes `audit verify` exit 1 when any chain is broken.
var errChainBroken = errors.New("audit chain verification failed")

func auditVerify(ctx context.Context, a *tool, agency models.Agency, stdout io.Writer) error {
	v := audit.NewVerifier(a.audits)
	var reports []audit.Report
	if agency.ID != 0 {
		r, err := v.Verify(ctx, agency.ID)
		if err != nil {
			return err
		}
		reports = []audit.Report{r}
	} else {
		var err error
		if reports, err = v.VerifyAll(ctx); err != nil {
			return err
		}
	}
	names := map[int64]string{models.PlatformAgencyID: "platform"}
	list, err := a.agencies.List(ctx)
	if err != nil {
		return err
	}
	for _, ag := range list {
		names[ag.ID] = ag.Slug
	}
	broken := 0
	for _, r := range reports {
		name := names[r.AgencyID]
		if name == "" {
			name = fmt.Sprintf("agency %d", r.AgencyID)
		}
		fmt.Fprintf(stdout, "%s: %d records, head seq %d hash %s: ", name, r.Records, r.HeadSeq, orNone(r.HeadHash))
		if r.Intact {
			note := ""
			if r.Anchored {
				note = " (starts at a purge anchor)"
			}
			fmt.Fprintf(stdout, "intact%s\n", note)
			continue
		}
		broken++
		fmt.Fprintf(stdout, "BROKEN at seq %d", r.Break.Seq)
		if r.Break.EventID != 0 {
			fmt.Fprintf(stdout, " (event id %d)", r.Break.EventID)
		}
		fmt.Fprintf(stdout, ": %s\n", r.Break.Problem)
	}
	if len(reports) == 0 {
		fmt.Fprintln(stdout, "no audit chains yet")
	}
	if broken > 0 {
		return fmt.Errorf("%w: %d of %d chains broken", errChainBroken, broken, len(reports))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func auditExport(ctx context.Context, a *tool, agency models.Agency, f audit.Filter, fm audit.Format, output string, stdout, stderr io.Writer) error {
	ex, err := audit.NewExporter(a.audits, a.recorder, a.clock).Start(ctx, audit.ExportRequest{
		Agency: agency, Filter: f, Format: fm, Actor: cliActor(), Origin: audit.Origin{RequestID: "cli"},
	})
	if err != nil {
		return err
	}
	w, dest := stdout, "standard output"
	var file *os.File
	if output != "" {
		tmp, err := os.CreateTemp(filepath.Dir(output), ".audit-export-*")
		if err != nil {
			return fmt.Errorf("output: %w", err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		file, w, dest = tmp, tmp, output
	}
	n, err := ex.WriteTo(ctx, w)
	if err != nil {
		return err
	}
	if file != nil {
		if err := file.Chmod(0o600); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		if err := file.Close(); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		if err := os.Rename(file.Name(), output); err != nil {
			return fmt.Errorf("output: %w", err)
		}
	}
	fmt.Fprintf(stderr, "exported %d records of %s as %s to %s (chain head seq %d, hash %s)\n", n, agency.Slug, fm, dest, ex.HeadSeq, orNone(ex.HeadHash))
	return nil
}

func auditPurge(ctx context.Context, a *tool, agency models.Agency, before time.Time, yes bool, stdout io.Writer) error {
	p := audit.NewPurger(a.db, a.audits, a.recorder, a.cfg.AuditRetention, a.clock)
	day := before.UTC().Format("2006-01-02 15:04:05 UTC")
	plan, err := p.Plan(ctx, agency.ID, before)
	switch {
	case errors.Is(err, audit.ErrNothingToPurge):
		fmt.Fprintf(stdout, "%s: no records older than %s; nothing removed\n", agency.Slug, day)
		return nil
	case err != nil:
		return err
	}
	if !yes {
		fmt.Fprintf(stdout, "%s: %d records older than %s (sequence %d to %d) would be removed.\nNothing was removed. Run again with --yes to remove them.\n",
			agency.Slug, plan.Records, day, plan.FirstSeq, plan.ThroughSeq)
		return nil
	}
	res, err := p.Purge(ctx, agency.ID, before, cliActor(), audit.Origin{RequestID: "cli"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: removed %d records older than %s (sequence %d to %d); the chain now starts at a purge anchor (seq %d, hash %s) and the purge is recorded.\n",
		agency.Slug, res.Records, day, res.FirstSeq, res.ThroughSeq, res.Anchor.Seq, res.Anchor.Hash)
	return nil
}
