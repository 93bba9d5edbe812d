package inventory

import (
	"context"
	"errors"
	"fmt"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/policy"
	"keyconsole/services/sshkeys"
)

// SSHKeys adapts the SFTP key service to the inventory. Keys are generated
// by the agency, so the console revokes them but does not rotate them: the
// rotate action leads to the upload of a new key.
type SSHKeys struct {
	Svc *sshkeys.Service
}

// Type is policy.TypeSSHKey.
func (SSHKeys) Type() string { return policy.TypeSSHKey }

// AuditLink says the feature's records name a key by its id.
func (SSHKeys) AuditLink() Link {
	return Link{TargetType: audit.TargetSSHKey, Relations: map[string]string{
		audit.ActionSSHKeyUpload: RelUploaded,
	}}
}

// List returns every key of every SFTP account of the agency.
func (k SSHKeys) List(ctx context.Context, agencyID int64) ([]Item, error) {
	ov, err := k.Svc.Overview(ctx, agencyID)
	if err != nil {
		return nil, err
	}
	var out []Item
	for _, acc := range ov.Accounts {
		for _, row := range acc.Keys {
			key := row.Key
			it := Item{Type: policy.TypeSSHKey, ID: key.ID, Name: acc.Account.Name + " · " + key.KeyType, Environment: acc.Account.Environment,
				Status: row.Status, CreatedAt: key.CreatedAt, LastUsedAt: key.LastUsedAt, ExpiresAt: key.ExpiresAt,
				DetailPath: fmt.Sprintf("/ssh-keys#key-%d", key.ID), Extra: key.Fingerprint}
			if key.Comment != "" {
				it.Name += " (" + key.Comment + ")"
			}
			if key.CreatedByID != nil {
				it.CreatedByUserID = *key.CreatedByID
			}
			if row.Status == models.SSHKeyActive {
				it.RotatePath = fmt.Sprintf("/ssh-keys/accounts/%d/upload", acc.Account.ID)
			}
			out = append(out, it)
		}
	}
	return out, nil
}

// Revoke ends a key at once: the SFTP server refuses it on the next login.
func (k SSHKeys) Revoke(ctx context.Context, actor audit.Actor, origin audit.Origin, agencyID, id int64, reason string) error {
	err := k.Svc.Revoke(ctx, actor, origin, agencyID, id, reason)
	if errors.Is(err, sshkeys.ErrNotActive) {
		return ErrInactive
	}
	return err
}
