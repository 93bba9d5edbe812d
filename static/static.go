// Package static embeds the console's stylesheets, scripts, fonts and images:
// the vendored U.S. Web Design System assets and keyconsole's own.
package static

import "embed"

// FS holds every static asset, served under /static/.
//
//go:embed app.css app.js uswds
var FS embed.FS
