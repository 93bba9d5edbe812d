package audit

// Actions recorded for API credentials and the token endpoint. None of their
// records ever carries a client secret, a pepper or a private key.
const (
	// ActionAPICredentialCreate is the creation of an API credential.
	ActionAPICredentialCreate = "api_credential.create"
	// ActionAPICredentialRegenerate is the replacement of a credential's secret.
	ActionAPICredentialRegenerate = "api_credential.regenerate"
	// ActionAPICredentialRevoke is the revocation of a credential.
	ActionAPICredentialRevoke = "api_credential.revoke"
	// ActionAPICredentialExpire records that a credential's expiry date passed.
	ActionAPICredentialExpire = "api_credential.expire"
	// ActionAPICredentialTokenRefused summarises refused token requests of one
	// client_id, source address and reason over an interval (with a count).
	ActionAPICredentialTokenRefused = "api_credential.token_refused"
	// ActionTokenKeyCreate is the creation of the first token signing key.
	ActionTokenKeyCreate = "token_key.create"
	// ActionTokenKeyRotate is the rotation of the token signing key.
	ActionTokenKeyRotate = "token_key.rotate"
	// ActionTokenKeyExpire is the removal of a retired signing key from the
	// published key set (its private key destroyed).
	ActionTokenKeyExpire = "token_key.expire"
	// ActionAPISecretPepperCreate is the generation of the API-secret pepper.
	ActionAPISecretPepperCreate = "api_secret_pepper.create"
)

// Target types of API credential records.
const (
	// TargetAPICredential is an API credential; its target id is the client_id.
	TargetAPICredential = "api_credential"
	// TargetTokenKey is a token signing key; its target id is the kid.
	TargetTokenKey = "token_signing_key"
	// TargetPlatformSecret is a platform secret such as the pepper.
	TargetPlatformSecret = "platform_secret"
)
