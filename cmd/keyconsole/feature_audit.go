package main

import (
	"context"
	"time"

	"keyconsole/handlers"
	"keyconsole/services/audit"
	"keyconsole/web"
)

// wireAudit mounts the audit log viewer and its exports.
func wireAudit(_ context.Context, rt *runtime) error {
	h := &handlers.AuditLog{
		Handler:  rt.handler,
		Exporter: audit.NewExporter(rt.audits, rt.recorder, rt.clock),
		// A page shows a result at most 15 seconds old, bringing it up to date
		// over the new records, and re-verifies whole chains every 10 minutes.
		Chain: audit.NewChainMonitor(audit.NewVerifier(rt.audits), 15*time.Second, 10*time.Minute, rt.clock),
	}
	rt.mounts = append(rt.mounts, web.AuditRoutes(h))
	return nil
}
