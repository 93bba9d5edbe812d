// Command keyconsole is the key-management console of the court-date
// notification platform: web console, OAuth token endpoint, SFTP server and
// the operator commands around them, in one binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `keyconsole: the key-management console for agency API credentials, SFTP keys
and webhook secrets.

Usage:
  keyconsole <command> [arguments]

Commands:
  serve                 run the console, token endpoint and SFTP server
  dev                   run the console with a built-in sign-in provider and
                        seeded demo data (development only; what 'make run' runs)
  migrate up            apply pending database migrations
  migrate status        list migrations and whether each is applied
  agency create SLUG --name NAME
                        create an agency
  agency map SLUG --provider ID --group VALUE --role admin|reviewer|viewer
                        map an identity-provider group to a role in an agency
  config check [--dev]  validate the configuration (as serve reads it, or as dev) and report every problem
  kms check             round trip against the configured key-management service
  kms rewrap [--batch N]
                        re-wrap every stored data key under the current KMS key
                        (resumable; audited)
  version               print the version and whether the FIPS 140-3 module is active
  audit verify|export|purge  verify audit chains, export a filtered view, purge past retention
  report inventory --agency SLUG --format csv|pdf [--output FILE]  credential inventory report
  token-keys list|rotate list the access-token signing keys, or rotate the active one
  sftp                  run the SFTP server alone (on KEYCONSOLE_SFTP_ADDR)
  authorized-keys USER  print USER's active SFTP keys for OpenSSH's AuthorizedKeysCommand
  help                  show this help

Configuration comes from KEYCONSOLE_* environment variables; see .env.example.
Secrets are read only from the environment or files, never from flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line; it returns the process exit code.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "--version":
		err = cmdVersion(stdout)
	case "serve":
		err = cmdServe(ctx, args[1:], lookupEnv, stdout, stderr, false)
	case "dev":
		err = cmdServe(ctx, args[1:], lookupEnv, stdout, stderr, true)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], lookupEnv, stdout)
	case "agency":
		err = cmdAgency(ctx, args[1:], lookupEnv, stdout)
	case "config":
		err = cmdConfig(args[1:], lookupEnv, stdout)
	case "audit":
		err = cmdAudit(ctx, args[1:], lookupEnv, stdout, stderr)
	case "token-keys":
		err = cmdTokenKeys(ctx, args[1:], lookupEnv, stdout, stderr)
	case "kms":
		err = cmdKMS(ctx, args[1:], lookupEnv, stdout, stderr)
	case "sftp":
		err = cmdSFTP(ctx, args[1:], lookupEnv, stderr)
	case "authorized-keys":
		err = cmdAuthorizedKeys(ctx, args[1:], lookupEnv, stdout)
	case "report":
		err = cmdReport(ctx, args[1:], lookupEnv, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "keyconsole: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "keyconsole: %s\n\n%s", ue.msg, usage)
		return 2
	}
	var ce configErrors
	if errors.As(err, &ce) {
		fmt.Fprintln(stderr, "keyconsole: configuration is not valid:")
		for _, e := range ce {
			fmt.Fprintf(stderr, "  %s: %s\n", e.Var, e.Reason)
		}
		return 1
	}
	fmt.Fprintf(stderr, "keyconsole: %v\n", err)
	return 1
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }
