package audit

import (
	"errors"

	"keyconsole/models"
)

// Action names recorded by the console. Later features add their own in the
// same dotted form (resource.verb).
const (
	ActionSignIn         = "auth.sign_in"
	ActionSignInRefused  = "auth.sign_in_refused"
	ActionSignOut        = "auth.sign_out"
	ActionSessionTimeout = "auth.session_timeout"
	ActionReauth         = "auth.reauthenticate"
	ActionAgencyCreate   = "agency.create"
	ActionMappingCreate  = "agency.mapping_create"
	ActionMappingDelete  = "agency.mapping_delete"
	ActionAgencySwitch   = "agency.switch"
	ActionUserDisable    = "user.disable"
	ActionUserEnable     = "user.enable"
	ActionPurgeAnchor    = "audit.purge_anchor"
	ActionAuditPurge     = "audit.purge"
)

func isNotFound(err error) bool { return errors.Is(err, models.ErrNotFound) }
