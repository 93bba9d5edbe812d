// Package e2e holds keyconsole's end-to-end tests: the real binary, started
// by e2e/harness against real SQLite and PostgreSQL databases and a real
// OIDC provider, driven through real Chromium and plain HTTP clients.
package e2e
