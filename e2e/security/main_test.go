package security

import (
	"os"
	"testing"

	"keyconsole/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
