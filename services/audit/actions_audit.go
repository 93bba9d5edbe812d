package audit

// Actions recorded by the audit log itself.
const (
	// ActionAuditExport is a download of a filtered view of the audit log.
	ActionAuditExport = "audit.export"
)

// Target type of records about an agency's audit chain.
const TargetAuditChain = "audit_chain"
