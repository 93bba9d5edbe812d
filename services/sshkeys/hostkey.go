package sshkeys

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/secrets"
)

// HostKeyRef is where the SFTP server's host key is kept: a platform secret
// shared by every replica.
var HostKeyRef = secrets.Ref{AgencyID: models.PlatformAgencyID, RecordType: "sftp_host_key", RecordID: "v1"}

// LoadOrCreateHostKey returns the SFTP host key kept in sec, generating an
// Ed25519 key the first time. Replicas starting together create only one:
// the creation runs in a transaction that holds the store's host-key lock
// and looks again before it generates, and every caller then re-reads what
// was committed.
func LoadOrCreateHostKey(ctx context.Context, db *models.DB, store *models.SSHKeyStore, sec *secrets.Service, rec *audit.Recorder) (ssh.Signer, error) {
	signer, err := readHostKey(ctx, sec)
	if err == nil || !errors.Is(err, models.ErrNotFound) {
		return signer, err
	}
	err = db.Tx(ctx, func(ctx context.Context) error {
		if err := store.LockHostKeyCreation(ctx); err != nil {
			return err
		}
		if _, err := readHostKey(ctx, sec); !errors.Is(err, models.ErrNotFound) {
			return err // created meanwhile (err nil), or a real failure
		}
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		defer clear(priv)
		pub, err := ssh.NewPublicKey(priv.Public())
		if err != nil {
			return err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		defer clear(der)
		if err := sec.Put(ctx, HostKeyRef, der); err != nil {
			return err
		}
		return rec.Record(ctx, audit.Event{AgencyID: models.PlatformAgencyID, Actor: audit.Actor{Type: audit.ActorSystem, ID: "sftp", Name: "sftp server"},
			Action: audit.ActionSFTPHostKeyCreate, TargetType: audit.TargetSFTPHostKey, TargetID: HostKeyRef.RecordID,
			TargetName: ssh.FingerprintSHA256(pub), Outcome: audit.OutcomeSuccess, Details: map[string]string{"key_type": pub.Type()}})
	})
	if err != nil {
		return nil, fmt.Errorf("sshkeys: create host key: %w", err)
	}
	return readHostKey(ctx, sec)
}

func readHostKey(ctx context.Context, sec *secrets.Service) (ssh.Signer, error) {
	der, err := sec.Get(ctx, HostKeyRef)
	if err != nil {
		return nil, fmt.Errorf("sshkeys: host key: %w", err)
	}
	defer clear(der)
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("sshkeys: host key: decode: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("sshkeys: host key: %w", err)
	}
	return signer, nil
}
