// Package security is keyconsole's security and reliability suite: an
// authorization matrix walked over every route, secret-leak canaries,
// faults (KMS and database outages, crashes mid-rotation, concurrent
// rotations), two replicas on one PostgreSQL database, sign-in abuse
// limits, accessibility checks with axe-core in Chromium, and production
// start-up refusals. Every test drives the real keyconsole binary through
// e2e/harness.
//
// The quick parts run in `make test`; the long ones run only when
// KEYCONSOLE_TEST_LONG=1 (what `make test-long` sets).
package security
