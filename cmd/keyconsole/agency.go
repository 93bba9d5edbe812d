package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"keyconsole/services/agencies"
	"keyconsole/services/audit"
)

func cmdAgency(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer) error {
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		return usageError{"usage: keyconsole agency create SLUG --name NAME | agency map SLUG --provider ID --group VALUE --role ROLE"}
	}
	verb, slug := args[0], args[1]
	fs := flag.NewFlagSet("agency "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "agency name")
	provider := fs.String("provider", "", "identity provider id")
	group := fs.String("group", "", "group value as the provider sends it")
	role := fs.String("role", "", "admin, reviewer or viewer")
	if err := fs.Parse(args[2:]); err != nil {
		return usageError{err.Error()}
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
	origin := audit.Origin{RequestID: "cli"}
	var ve *agencies.ValidationError
	switch verb {
	case "create":
		ag, err := a.agencySv.Create(ctx, cliActor(), origin, slug, *name)
		if errors.As(err, &ve) {
			return fmt.Errorf("agency not created: %s", ve.Error())
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created agency %s (%s)\n", ag.Slug, ag.Name)
	case "map":
		ag, err := a.agencySv.BySlug(ctx, slug)
		if err != nil {
			return fmt.Errorf("agency %q: %w", slug, err)
		}
		known := *provider == "dev"
		for _, p := range cfg.Providers {
			known = known || p.ID == *provider
		}
		if !known {
			return fmt.Errorf("provider %q is not configured (KEYCONSOLE_OIDC_PROVIDERS; dev is the built-in development provider)", *provider)
		}
		m, err := a.agencySv.Map(ctx, cliActor(), origin, ag.ID, *provider, *group, *role)
		if errors.As(err, &ve) {
			return fmt.Errorf("mapping not added: %s", ve.Error())
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "mapped %s group %q to %s in %s\n", m.Provider, m.GroupValue, m.Role, ag.Slug)
	default:
		return usageError{fmt.Sprintf("unknown agency command %q", verb)}
	}
	return nil
}
