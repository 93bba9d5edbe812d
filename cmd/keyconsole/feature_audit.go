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
		// A page shows a verification result at most a minute old.
		Chain: audit.NewChainMonitor(audit.NewVerifier(rt.audits), time.Minute, rt.clock),
	}
	rt.mounts = append(rt.mounts, web.AuditRoutes(h))
	return nil
}
