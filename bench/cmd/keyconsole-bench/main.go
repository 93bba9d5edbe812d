// Command keyconsole-bench runs keyconsole's performance suite: it seeds
// databases through the stores and services, starts the real keyconsole
// binary pinned to one core, drives it with wrk (and OpenSSH-protocol
// logins, sqlite3 and Go benchmarks) from another core, compares every
// figure with a baseline measured in the same run, and writes
// bench/results/<date>.md and .json.
//
//	keyconsole-bench run -bin bin/keyconsole -out bench/results
//	keyconsole-bench baseline -addr 127.0.0.1:9000 -size 612
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keyconsole-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: keyconsole-bench run [flags] | baseline -addr ADDR -size BYTES")
	}
	switch args[0] {
	case "baseline":
		fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		size := fs.Int("size", 512, "size of the JSON body in bytes")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return serveBaseline(ctx, *addr, *size)
	case "scan":
		fs := flag.NewFlagSet("scan", flag.ContinueOnError)
		db := fs.String("db", "", "SQLite database file")
		agency := fs.Int64("agency", 0, "agency id")
		maxID := fs.Int64("max-id", 0, "last audit event id")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return scanFloor(ctx, *db, *agency, *maxID, stdout)
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		var o options
		fs.StringVar(&o.Bin, "bin", "bin/keyconsole", "keyconsole binary to measure")
		fs.StringVar(&o.Self, "self", "", "this program's binary (for the baseline server); default: the running executable")
		fs.StringVar(&o.Out, "out", "bench/results", "directory for <date>.md and <date>.json")
		fs.StringVar(&o.Work, "work", "", "working directory for seeded databases (kept between runs; default $TMPDIR/keyconsole-bench)")
		fs.StringVar(&o.Notes, "notes", "bench/changes.md", "markdown appended to the results (what was changed, with before/after figures)")
		fs.IntVar(&o.Runs, "runs", 5, "runs of every measurement (the median is reported)")
		fs.DurationVar(&o.Duration, "duration", 3*time.Second, "length of one load-test run")
		fs.StringVar(&o.ServerCPU, "server-cpu", "1", "CPU list the measured servers are pinned to (taskset -c)")
		fs.StringVar(&o.LoadCPU, "load-cpu", "0", "CPU list the load generators are pinned to")
		fs.StringVar(&o.Only, "only", "", "comma-separated scenarios to run (token,list,dashboard,audit,export,sftp,webhooks,startup); default all")
		fs.BoolVar(&o.Reseed, "reseed", false, "seed the databases again even when the work directory has them")
		fs.StringVar(&o.Tag, "tag", "", "suffix of the result file names (e.g. before)")
		fs.StringVar(&o.Profile, "profile", "", "directory for CPU profiles of the console under the token and list loads (taken after the measured runs)")
		fs.StringVar(&o.Keyrings, "keyrings", "aws", "keyrings of the webhook benchmark, as a Go benchmark pattern: aws, local or (local|aws)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if o.Runs < 5 {
			return errors.New("-runs must be at least 5: the suite reports medians of at least 5 runs")
		}
		return runSuite(ctx, o, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q (run or baseline)", args[0])
}
