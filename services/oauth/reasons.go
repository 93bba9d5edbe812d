package oauth

// Reasons a token request is refused, as audit records and logs name them.
const (
	ReasonMalformedRequest = "malformed_request"
	ReasonUnsupportedGrant = "unsupported_grant_type"
	ReasonUnknownClient    = "unknown_client"
	ReasonInvalidSecret    = "invalid_secret"
	ReasonRevoked          = "revoked"
	ReasonExpired          = "expired"
	ReasonInvalidScope     = "invalid_scope"
	ReasonRateLimited      = "rate_limited"
)
