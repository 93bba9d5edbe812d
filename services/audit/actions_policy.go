package audit

// Action names of the rotation policy, hygiene review and personnel-change
// workflow. A linked operation (bulk revoke, personnel change) carries the
// same "operation" detail on its start, end and every record in between.
const (
	ActionPolicyUpdate         = "policy.update"
	ActionIdPSecretRecord      = "idp_secret.record"
	ActionIdPSecretDelete      = "idp_secret.delete"
	ActionHygieneRevokeStart   = "hygiene.bulk_revoke_start"
	ActionHygieneRevoke        = "hygiene.revoke"
	ActionHygieneRevokeEnd     = "hygiene.bulk_revoke_end"
	ActionPersonnelStart       = "personnel.start"
	ActionPersonnelRotate      = "personnel.rotate"
	ActionPersonnelRevoke      = "personnel.revoke"
	ActionPersonnelSessionsEnd = "personnel.sessions_end"
	ActionPersonnelEnd         = "personnel.end"
)
