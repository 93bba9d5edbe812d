package audit

// Actions recorded for webhook endpoints and their secrets. Records name the
// endpoint and the secret version, never a secret or a signature.
const (
	ActionWebhookCreate        = "webhook.endpoint_create"
	ActionWebhookUpdate        = "webhook.endpoint_update"
	ActionWebhookEnable        = "webhook.endpoint_enable"
	ActionWebhookDisable       = "webhook.endpoint_disable"
	ActionWebhookDelete        = "webhook.endpoint_delete"
	ActionWebhookSecretSet     = "webhook.secret_set"
	ActionWebhookSecretRotate  = "webhook.secret_rotate"
	ActionWebhookSecretReveal  = "webhook.secret_reveal"
	ActionWebhookTestEvent     = "webhook.test_event"
	ActionWebhookRotationEnded = "webhook.rotation_ended"
)

// TargetWebhookEndpoint is the target type of webhook records.
const TargetWebhookEndpoint = "webhook_endpoint"
