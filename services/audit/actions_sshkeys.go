package audit

// Actions recorded for SFTP accounts, their SSH keys and the SFTP server.
// None of their records ever carries a private key or any part of one.
const (
	// ActionSFTPAccountCreate is the creation of an SFTP account.
	ActionSFTPAccountCreate = "sftp_account.create"
	// ActionSSHKeyUpload is the upload of a public key to an SFTP account.
	ActionSSHKeyUpload = "ssh_key.upload"
	// ActionSSHKeyPrivateRefused records that an upload held a private key:
	// it was refused and not kept, and the record names only the account.
	ActionSSHKeyPrivateRefused = "ssh_key.private_key_refused"
	// ActionSSHKeyRevoke is the revocation of a key.
	ActionSSHKeyRevoke = "ssh_key.revoke"
	// ActionSSHKeyExpired records, once per key, that its expiry date passed.
	ActionSSHKeyExpired = "ssh_key.expired"
	// ActionSFTPLogin is one SFTP login, after the client proved it holds
	// the private key.
	ActionSFTPLogin = "sftp.login"
	// ActionSFTPLoginRefused summarises refused SFTP public keys of one
	// account name, source address and reason over an interval (with a
	// count in its details).
	ActionSFTPLoginRefused = "sftp.login_refused"
	// ActionSFTPHostKeyCreate is the generation of the SFTP host key.
	ActionSFTPHostKeyCreate = "sftp_host_key.create"
)

// Target types and actor type of SFTP records.
const (
	// TargetSFTPAccount is an SFTP account; its target name is the SSH user name.
	TargetSFTPAccount = "sftp_account"
	// TargetSSHKey is an SSH public key; its target name is its SHA256 fingerprint.
	TargetSSHKey = "ssh_key"
	// TargetSFTPHostKey is the SFTP server's host key; its target name is
	// its SHA256 fingerprint.
	TargetSFTPHostKey = "sftp_host_key"
	// ActorSFTPAccount is an SFTP account acting through the SFTP server.
	ActorSFTPAccount = "sftp_account"
)
