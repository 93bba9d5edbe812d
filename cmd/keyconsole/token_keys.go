package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"keyconsole/app/core"
	"keyconsole/kms"
	"keyconsole/services/audit"
)

// cmdTokenKeys lists the access-token signing keys or rotates the active one.
func cmdTokenKeys(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) != 1 || (args[0] != "list" && args[0] != "rotate") {
		return usageError{"usage: keyconsole token-keys list | token-keys rotate"}
	}
	cfg, err := loadToolConfig(lookupEnv)
	if err != nil {
		return err
	}
	kr, err := newKeyring(ctx, cfg)
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	resolveKeyring(ctx, kr, log)
	a, err := openApp(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer a.close()
	sec := core.NewSecrets(a.core, kms.NewEnvelope(kr, kms.Options{}))
	iss, err := core.TokenIssuer(cfg.tokenConfig(), a.clock)
	if err != nil {
		return err
	}
	km := core.TokenKeyManager(a.core, sec, iss)
	if args[0] == "rotate" {
		k, err := km.Rotate(ctx, cliActor(), audit.Origin{RequestID: "cli"})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new signing key %s: published now, signs from %s\n", k.KID, k.ActivatesAt.Format(time.RFC3339))
		fmt.Fprintln(stdout, "running servers pick it up within a minute; the previous key stays published until its last token has expired")
	}
	list, err := km.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tSTATUS\tCREATED\tSIGNS FROM\tNOT AFTER\tPUBLISH UNTIL")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.State, stamp(&k.CreatedAt), stamp(&k.ActivatesAt), stamp(k.NotAfter), stamp(k.PublishUntil))
	}
	return tw.Flush()
}

func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
