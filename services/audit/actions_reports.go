package audit

// Actions recorded by the reports.
const (
	// ActionReportInventoryExport is a download of the credential inventory
	// report (details: format and count of credentials).
	ActionReportInventoryExport = "report.inventory_export"
)

// TargetCredentialInventory is the target type of records about an agency's
// credential inventory.
const TargetCredentialInventory = "credential_inventory"

// SafeCell neutralises a spreadsheet formula in a CSV cell exactly as the
// audit CSV export does, for the other reports' CSV files.
func SafeCell(s string) string { return safeCell(s) }
