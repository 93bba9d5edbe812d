package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
)

func cmdMigrate(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "status") {
		return usageError{"usage: keyconsole migrate up|status"}
	}
	cfg, err := loadToolConfig(lookupEnv)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, slog.New(slog.DiscardHandler), false)
	if err != nil {
		return err
	}
	defer a.close()
	if args[0] == "up" {
		applied, err := a.db.Migrate(ctx)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "database is up to date")
		}
		for _, v := range applied {
			fmt.Fprintf(stdout, "applied %05d\n", v)
		}
		return nil
	}
	st, err := a.db.MigrationStatuses(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT")
	for _, s := range st {
		state, at := "pending", ""
		if s.Applied {
			state, at = "applied", s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", s.Version, s.Name, state, at)
	}
	return tw.Flush()
}
