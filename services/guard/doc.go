// Package guard holds what protects the console's public endpoints (the
// token endpoint and the SFTP server) and keeps their records bounded: the
// token-bucket Limiter, the FailureAggregator that audits refusals (the
// first of each key at once, repeats summarised) and the LastUseTracker
// that batches last-use writes. Both endpoints use it; neither owns it.
package guard
