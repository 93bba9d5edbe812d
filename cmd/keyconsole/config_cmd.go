package main

import (
	"fmt"
	"io"
	"strings"
)

func cmdConfig(args []string, lookupEnv func(string) (string, bool), stdout io.Writer) error {
	// --dev checks the environment as `keyconsole dev` reads it.
	dev := len(args) == 2 && args[1] == "--dev"
	if len(args) < 1 || args[0] != "check" || (len(args) == 2 && !dev) || len(args) > 2 {
		return usageError{"usage: keyconsole config check [--dev]"}
	}
	cfg, err := loadConfig(lookupEnv, dev)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "configuration is valid (%s)\n", cfg.Env)
	fmt.Fprintf(stdout, "  http:      %s (base URL %s)\n", cfg.HTTPAddr, cfg.BaseURL)
	fmt.Fprintf(stdout, "  data dir:  %s\n", cfg.DataDir)
	fmt.Fprintf(stdout, "  database:  %s\n", redactDSN(cfg.DatabaseURL))
	fmt.Fprintf(stdout, "  kms:       %s\n", cfg.KMSProvider)
	sftp := cfg.SFTPAddr
	if sftp == "" {
		sftp = "disabled"
	}
	fmt.Fprintf(stdout, "  sftp:      %s\n", sftp)
	proxies := "none (client addresses are the connections' own)"
	if len(cfg.TrustedProxies) > 0 {
		names := make([]string, len(cfg.TrustedProxies))
		for i, p := range cfg.TrustedProxies {
			names[i] = p.String()
		}
		proxies = strings.Join(names, ", ") + " (" + cfg.ProxyHeader + ")"
	}
	fmt.Fprintf(stdout, "  proxies:   %s\n", proxies)
	for _, p := range cfg.Providers {
		fmt.Fprintf(stdout, "  provider:  %s (%s) %s\n", p.ID, p.Kind, p.Issuer)
	}
	return nil
}
