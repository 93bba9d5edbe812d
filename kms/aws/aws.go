// Package aws is the kms.Keyring of AWS KMS (and KMS-compatible servers),
// through github.com/aws/aws-sdk-go-v2/service/kms.
//
// Credentials come from the SDK's standard chain (environment, shared files,
// web identity, container and instance roles). GovCloud is a matter of the
// region (us-gov-west-1, us-gov-east-1); a FIPS endpoint is selected either by
// the SDK's own setting (AWS_USE_FIPS_ENDPOINT=true, or use_fips_endpoint in the
// shared config) or by naming it as the endpoint override.
//
// Data keys are AES_256 keys from GenerateDataKey, and every call passes the
// encryption context, which KMS binds to the wrapped key. Blobs record the key
// ARN KMS reports, not the configured alias, so they keep decrypting after the
// alias is moved to a new key.
package aws

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"keyconsole/kms"
)

// ProviderName is what Keyring.Provider returns.
const ProviderName = "aws"

// DefaultCallTimeout bounds one provider call, retries included, when
// Options.CallTimeout is zero.
const DefaultCallTimeout = 10 * time.Second

// Options configures the AWS KMS keyring.
type Options struct {
	// KeyID is the master key: key id, key ARN, alias name ("alias/…") or
	// alias ARN. Required.
	KeyID string
	// Region is the AWS region; empty takes the SDK's (AWS_REGION, shared config).
	Region string
	// Endpoint overrides the KMS endpoint URL (a FIPS endpoint, or a
	// KMS-compatible server in tests). Empty uses the SDK's endpoint resolution.
	Endpoint string
	// MaxAttempts bounds the SDK's attempts per call; zero keeps its default (3).
	MaxAttempts int
	// CallTimeout bounds each call including retries; zero means
	// DefaultCallTimeout, negative means only the caller's context applies.
	CallTimeout time.Duration
}

// Keyring wraps data keys with an AWS KMS key. It is safe for concurrent use.
type Keyring struct {
	client      *awskms.Client
	keyID       string
	callTimeout time.Duration
	// resolved is the ARN of the key KMS last used for KeyID.
	resolved atomic.Pointer[string]
}

var _ kms.Keyring = (*Keyring)(nil)

// New loads the SDK configuration (standard credential chain) and returns a
// keyring for opts.KeyID. It makes no call to KMS, so the console can start
// while KMS is unreachable; Resolve or Envelope.Check contacts it.
func New(ctx context.Context, opts Options) (*Keyring, error) {
	if opts.KeyID == "" {
		return nil, errors.New("kms/aws: key id is required")
	}
	var loadOpts []func(*config.LoadOptions) error
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("kms/aws: load configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("kms/aws: no region configured")
	}
	client := awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = awssdk.String(opts.Endpoint)
		}
		if opts.MaxAttempts > 0 {
			o.RetryMaxAttempts = opts.MaxAttempts
		}
	})
	timeout := opts.CallTimeout
	if timeout == 0 {
		timeout = DefaultCallTimeout
	}
	return &Keyring{client: client, keyID: opts.KeyID, callTimeout: timeout}, nil
}

// Provider returns "aws".
func (k *Keyring) Provider() string { return ProviderName }

// CurrentKeyID returns the ARN of the configured key once KMS has named it
// (after Resolve or any successful GenerateDataKey or WrapKey), and the
// configured key id before that.
func (k *Keyring) CurrentKeyID() string {
	if arn := k.resolved.Load(); arn != nil {
		return *arn
	}
	return k.keyID
}

// Resolve asks KMS which key the configured key id names and remembers its
// ARN; it fails with kms.ErrUnavailable when the key is unknown, disabled or
// KMS cannot be reached.
func (k *Keyring) Resolve(ctx context.Context) error {
	ctx, cancel := k.callContext(ctx)
	defer cancel()
	out, err := k.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: awssdk.String(k.keyID)})
	if err != nil {
		return classify("describe key", err)
	}
	md := out.KeyMetadata
	if md == nil || md.Arn == nil {
		return fmt.Errorf("kms/aws: describe key: %w: no key metadata in the response", kms.ErrUnavailable)
	}
	if !md.Enabled {
		return fmt.Errorf("kms/aws: describe key: %w: key %s is %s", kms.ErrUnavailable, *md.Arn, md.KeyState)
	}
	k.resolved.Store(md.Arn)
	return nil
}

// GenerateDataKey asks KMS for an AES_256 data key under the configured key,
// bound to ec.
func (k *Keyring) GenerateDataKey(ctx context.Context, ec kms.EncryptionContext) (kms.DataKey, error) {
	if err := ec.Validate(); err != nil {
		return kms.DataKey{}, fmt.Errorf("kms/aws: generate data key: %w", err)
	}
	ctx, cancel := k.callContext(ctx)
	defer cancel()
	out, err := k.client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{
		KeyId:             awssdk.String(k.keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: ec,
	})
	if err != nil {
		return kms.DataKey{}, classify("generate data key", err)
	}
	if out.KeyId == nil || len(out.Plaintext) != kms.DataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return kms.DataKey{}, fmt.Errorf("kms/aws: generate data key: %w: malformed response", kms.ErrUnavailable)
	}
	k.resolved.Store(out.KeyId)
	return kms.DataKey{Plaintext: out.Plaintext, Wrapped: out.CiphertextBlob, KeyID: *out.KeyId}, nil
}

// Decrypt asks KMS to unwrap a data key, naming the key it must use and the
// encryption context it was bound to.
func (k *Keyring) Decrypt(ctx context.Context, keyID string, wrapped []byte, ec kms.EncryptionContext) ([]byte, error) {
	if err := ec.Validate(); err != nil {
		return nil, fmt.Errorf("kms/aws: decrypt: %w", err)
	}
	ctx, cancel := k.callContext(ctx)
	defer cancel()
	out, err := k.client.Decrypt(ctx, &awskms.DecryptInput{
		KeyId:             awssdk.String(keyID),
		CiphertextBlob:    wrapped,
		EncryptionContext: ec,
	})
	if err != nil {
		return nil, classify("decrypt", err)
	}
	return out.Plaintext, nil
}

// WrapKey encrypts an existing data key under the configured key, bound to ec.
func (k *Keyring) WrapKey(ctx context.Context, key []byte, ec kms.EncryptionContext) ([]byte, string, error) {
	if err := ec.Validate(); err != nil {
		return nil, "", fmt.Errorf("kms/aws: encrypt: %w", err)
	}
	ctx, cancel := k.callContext(ctx)
	defer cancel()
	out, err := k.client.Encrypt(ctx, &awskms.EncryptInput{
		KeyId:             awssdk.String(k.keyID),
		Plaintext:         key,
		EncryptionContext: ec,
	})
	if err != nil {
		return nil, "", classify("encrypt", err)
	}
	if out.KeyId == nil || len(out.CiphertextBlob) == 0 {
		return nil, "", fmt.Errorf("kms/aws: encrypt: %w: malformed response", kms.ErrUnavailable)
	}
	k.resolved.Store(out.KeyId)
	return out.CiphertextBlob, *out.KeyId, nil
}

func (k *Keyring) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if k.callTimeout > 0 {
		return context.WithTimeout(ctx, k.callTimeout)
	}
	return context.WithCancel(ctx)
}

// classify maps an SDK error to the kms error kinds: KMS saying the
// ciphertext or its key does not match is the blob's fault (ErrIntegrity);
// everything else (disabled or missing key, invalid key state, throttling,
// access denied, network failures, timeouts) is not (ErrUnavailable).
func classify(op string, err error) error {
	var invalidCiphertext *types.InvalidCiphertextException
	var incorrectKey *types.IncorrectKeyException
	if errors.As(err, &invalidCiphertext) || errors.As(err, &incorrectKey) {
		return fmt.Errorf("kms/aws: %s: %w: %w", op, kms.ErrIntegrity, err)
	}
	return fmt.Errorf("kms/aws: %s: %w: %w", op, kms.ErrUnavailable, err)
}
