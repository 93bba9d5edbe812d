package main

import (
	"crypto/fips140"
	"fmt"
	"io"
	goruntime "runtime"
	"runtime/debug"
)

// cmdVersion prints the build and whether Go's FIPS 140-3 module is active,
// so an operator (and CI) can check a release binary.
func cmdVersion(stdout io.Writer) error {
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	fmt.Fprintf(stdout, "keyconsole %s (%s)\n", version, goruntime.Version())
	if fips140.Enabled() {
		fmt.Fprintf(stdout, "fips140: enabled, module %s\n", fips140.Version())
	} else {
		fmt.Fprintln(stdout, "fips140: disabled")
	}
	return nil
}
