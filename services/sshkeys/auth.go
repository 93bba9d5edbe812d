package sshkeys

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/guard"
)

// Reasons a public key is refused, recorded in sftp.login_refused.
const (
	ReasonUnknownKey   = "unknown_key"
	ReasonWrongAccount = "wrong_account"
	ReasonExpired      = "expired"
	ReasonRateLimited  = "rate_limited"
)

// ErrRefused is what the SFTP server hears about any refused key; the
// reason is in the wrapped message and the audit record, never sent to the
// client.
var ErrRefused = errors.New("sshkeys: public key refused")

// AuthConfig configures an Authenticator.
type AuthConfig struct {
	// Root is the directory under which each account has its own
	// directory, <Root>/<account> (normally <data dir>/sftp). Required.
	Root string
	// Limiter configures the per-address slowdown; zero fields take the
	// defaults of DefaultLimiterConfig.
	Limiter guard.LimiterConfig
	// BlockDelay is how long a refusal of a blocked address is held before
	// it is answered (default 1 second; at most the address's remaining
	// block), so a blocked client also spends time per attempt.
	BlockDelay time.Duration
	// LastUseInterval is how often last use is written (default and at most
	// 1 minute).
	LastUseInterval time.Duration
	// FailureInterval is how often repeated refusals are summarised into
	// audit records (default 1 minute); the first refusal of an account,
	// address and reason in an interval is written at once.
	FailureInterval time.Duration
	// Logger receives flush errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultLimiterConfig is the slowdown of public-key authentication:
// failures are counted per (address, account) pair and per address; from
// the 10th failure of a pair, or the 30th of an address, within 15 minutes
// that pair or address is refused for 1 second, doubling per further
// failure up to 5 minutes. Successful logins are not rate limited per
// account, and nothing one address does blocks another address.
func DefaultLimiterConfig() guard.LimiterConfig {
	return guard.LimiterConfig{
		ClientRate:           rate.Inf,
		ClientBurst:          1,
		AddrRate:             20,
		AddrBurst:            100,
		PairFailureThreshold: 10,
		AddrFailureThreshold: 30,
		BaseDelay:            time.Second,
		MaxDelay:             5 * time.Minute,
		FailureWindow:        15 * time.Minute,
	}
}

// Login is an accepted public key: the account it opens and where that
// account's files live.
type Login struct {
	KeyID       int64
	AccountID   int64
	AgencyID    int64
	Account     string
	Root        string
	Fingerprint string
}

// Authenticator decides SFTP public-key logins against the database: a key
// is accepted for an account when it is one of that account's active,
// unexpired keys, found by the account name and the key's SHA256 fingerprint
// through an index (another agency may have its own copy of the key). The
// first refusal per account name, source address and reason is audited at
// once and its repeats are summarised every FailureInterval (see
// guard.FailureAggregator); successful logins (LoginSucceeded) are
// audited one by one and their last use is written every LastUseInterval.
type Authenticator struct {
	db      *models.DB
	store   *models.SSHKeyStore
	audit   *audit.Recorder
	cfg     AuthConfig
	limiter *guard.Limiter
	lastUse *guard.LastUseTracker
	fails   *guard.FailureAggregator

	logins  atomic.Uint64
	refused [len(refusalReasons)]atomic.Uint64

	closeOnce sync.Once
}

// refusalReasons are the reasons AuthStats counts, in a fixed order.
var refusalReasons = [...]string{ReasonUnknownKey, ReasonWrongAccount, ReasonExpired, ReasonRateLimited}

// AuthStats counts an Authenticator's decisions since it was made.
type AuthStats struct {
	// Logins counts completed logins (LoginSucceeded).
	Logins uint64
	// Refused counts refused keys by reason (the Reason constants).
	Refused map[string]uint64
}

// Stats returns the authenticator's counters.
func (a *Authenticator) Stats() AuthStats {
	st := AuthStats{Logins: a.logins.Load(), Refused: make(map[string]uint64, len(refusalReasons))}
	for i, r := range refusalReasons {
		st.Refused[r] = a.refused[i].Load()
	}
	return st
}

func (a *Authenticator) countRefusal(reason string) {
	for i, r := range refusalReasons {
		if r == reason {
			a.refused[i].Add(1)
		}
	}
}

// NewAuthenticator returns an Authenticator. Start its background flushing
// with Run and end it with Close.
func NewAuthenticator(db *models.DB, store *models.SSHKeyStore, rec *audit.Recorder, cfg AuthConfig) (*Authenticator, error) {
	if cfg.Root == "" || !filepath.IsAbs(cfg.Root) {
		return nil, errors.New("sshkeys: authenticator: Root must be an absolute directory")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BlockDelay == 0 {
		cfg.BlockDelay = time.Second
	}
	lc := cfg.Limiter
	def := DefaultLimiterConfig()
	if lc.ClientRate == 0 {
		lc.ClientRate, lc.ClientBurst = def.ClientRate, def.ClientBurst
	}
	if lc.AddrRate == 0 {
		lc.AddrRate = def.AddrRate
	}
	if lc.AddrBurst == 0 {
		lc.AddrBurst = def.AddrBurst
	}
	if lc.PairFailureThreshold == 0 {
		lc.PairFailureThreshold = def.PairFailureThreshold
	}
	if lc.AddrFailureThreshold == 0 {
		lc.AddrFailureThreshold = def.AddrFailureThreshold
	}
	if lc.BaseDelay == 0 {
		lc.BaseDelay = def.BaseDelay
	}
	if lc.MaxDelay == 0 {
		lc.MaxDelay = def.MaxDelay
	}
	if lc.FailureWindow == 0 {
		lc.FailureWindow = def.FailureWindow
	}
	limiter, err := guard.NewLimiter(lc)
	if err != nil {
		return nil, fmt.Errorf("sshkeys: authenticator: %w", err)
	}
	a := &Authenticator{db: db, store: store, audit: rec, cfg: cfg, limiter: limiter}
	a.lastUse, err = guard.NewLastUseTracker(guard.LastUseConfig{
		Interval: cfg.LastUseInterval,
		Logger:   cfg.Logger,
		Flush: func(ctx context.Context, lastUse map[int64]time.Time) error {
			return store.TouchLastUsed(ctx, lastUse)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sshkeys: authenticator: %w", err)
	}
	a.fails, err = guard.NewFailureAggregator(guard.FailureAggregatorConfig{
		Interval: cfg.FailureInterval,
		Flush:    a.flushFailures,
		Name:     "refused sftp logins",
		Logger:   cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("sshkeys: authenticator: %w", err)
	}
	return a, nil
}

// Authenticate decides whether key may log in to account from remoteAddr.
// It is called when a client offers a key, before the client has proved it
// holds the private key, so it records no success: LoginSucceeded does.
// Every refusal wraps ErrRefused.
func (a *Authenticator) Authenticate(ctx context.Context, account string, key ssh.PublicKey, remoteAddr string) (Login, error) {
	now := a.cfg.Now()
	if ok, wait := a.limiter.Allow(account, remoteAddr, now); !ok {
		a.countRefusal(ReasonRateLimited)
		a.fails.Record(guard.FailureKey{ClientID: account, Addr: hostOf(remoteAddr), Reason: ReasonRateLimited}, now)
		hold(ctx, min(wait, a.cfg.BlockDelay))
		return Login{}, fmt.Errorf("%w: %s", ErrRefused, ReasonRateLimited)
	}
	fp := ssh.FingerprintSHA256(key)
	k, err := a.store.LoginKey(ctx, account, fp)
	reason := ""
	switch {
	case errors.Is(err, models.ErrNotFound):
		if reason, err = a.missReason(ctx, account, fp); err != nil {
			return Login{}, fmt.Errorf("sshkeys: authenticate: %w", err)
		}
	case err != nil:
		return Login{}, fmt.Errorf("sshkeys: authenticate: %w", err)
	case !sameKey(k.PublicKey, key):
		// A different key with the same SHA-256 fingerprint.
		reason = ReasonUnknownKey
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		reason = ReasonExpired
	}
	if reason != "" {
		a.refuse(ctx, account, remoteAddr, reason, now)
		return Login{}, fmt.Errorf("%w: %s", ErrRefused, reason)
	}
	root, err := accountRoot(a.cfg.Root, k.AccountName)
	if err != nil {
		return Login{}, err
	}
	return Login{KeyID: k.ID, AccountID: k.AccountID, AgencyID: k.AgencyID, Account: k.AccountName, Root: root, Fingerprint: fp}, nil
}

// missReason says why a key is not one of the named account's: it is active
// on another account of that account's agency (wrong account), the account
// does not exist (wrong account, in the platform's chain), or the agency has
// no such key (unknown key). Whether another agency uses the key is never
// looked at: the reason goes into the account's agency's audit chain, and a
// key that agency does not use must read the same there wherever else it is
// active.
func (a *Authenticator) missReason(ctx context.Context, account, fp string) (string, error) {
	acc, err := a.store.AccountByName(ctx, account)
	if errors.Is(err, models.ErrNotFound) {
		return ReasonWrongAccount, nil
	}
	if err != nil {
		return "", err
	}
	_, err = a.store.ActiveByFingerprint(ctx, acc.AgencyID, fp)
	switch {
	case err == nil:
		return ReasonWrongAccount, nil
	case errors.Is(err, models.ErrNotFound):
		return ReasonUnknownKey, nil
	}
	return "", err
}

// refuse counts a refused key against the address and records it for the
// next summary, in the chain of the agency owning the account when there is
// such an account.
func (a *Authenticator) refuse(ctx context.Context, account, remoteAddr, reason string, now time.Time) {
	a.countRefusal(reason)
	a.limiter.RecordFailure(account, remoteAddr, now)
	agency := ""
	if acc, err := a.store.AccountByName(ctx, account); err == nil {
		agency = strconv.FormatInt(acc.AgencyID, 10)
	}
	a.fails.Record(guard.FailureKey{Agency: agency, ClientID: account, Addr: hostOf(remoteAddr), Reason: reason}, now)
}

// LoginSucceeded records a completed login: the client signed with the key
// Authenticate accepted. It clears the address's failures for the account,
// audits sftp.login and notes the key's last use.
func (a *Authenticator) LoginSucceeded(ctx context.Context, accountID, agencyID int64, account, fingerprint, remoteAddr string) {
	now := a.cfg.Now()
	a.logins.Add(1)
	a.limiter.RecordSuccess(account, remoteAddr, now)
	keyID, err := a.store.ActiveKeyID(ctx, accountID, fingerprint)
	if err == nil {
		a.lastUse.Touch(keyID, now)
	}
	ev := audit.Event{AgencyID: agencyID, Actor: audit.Actor{Type: audit.ActorSFTPAccount, ID: strconv.FormatInt(accountID, 10), Name: account},
		Action: audit.ActionSFTPLogin, TargetType: audit.TargetSSHKey, TargetName: fingerprint, Outcome: audit.OutcomeSuccess,
		Origin: audit.Origin{SourceIP: hostOf(remoteAddr)}, Details: map[string]string{"account": account}}
	if keyID != 0 {
		ev.TargetID = strconv.FormatInt(keyID, 10)
	}
	if err := a.audit.Record(context.WithoutCancel(ctx), ev); err != nil {
		a.cfg.Logger.ErrorContext(ctx, "sftp login could not be audited", "account", account, "error", err)
	}
}

// StillUsable reports, for each key id in order, whether that key may still
// log in: not revoked and not past its expiry date, as the database says
// now (so a revocation through any replica counts). The SFTP server asks it
// about its open sessions every few seconds and ends those of keys that may
// not, in one query for all of them.
func (a *Authenticator) StillUsable(ctx context.Context, keyIDs []int64) ([]bool, error) {
	seen := make(map[int64]bool, len(keyIDs))
	ids := make([]int64, 0, len(keyIDs))
	for _, id := range keyIDs {
		if _, dup := seen[id]; !dup && id != 0 {
			seen[id] = false
			ids = append(ids, id)
		}
	}
	usable, err := a.store.UsableKeyIDs(ctx, ids, a.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("sshkeys: check open sessions: %w", err)
	}
	for _, id := range usable {
		seen[id] = true
	}
	out := make([]bool, len(keyIDs))
	for i, id := range keyIDs {
		out[i] = seen[id]
	}
	return out, nil
}

// flushFailures writes one sftp.login_refused record per batch, in
// order, and returns how many it wrote before a failure stopped it (the
// aggregator keeps the rest).
func (a *Authenticator) flushFailures(ctx context.Context, batch []guard.FailureBatch) (int, error) {
	for i, b := range batch {
		agencyID := models.PlatformAgencyID
		if id, err := strconv.ParseInt(b.Agency, 10, 64); err == nil {
			agencyID = id
		}
		outcome := audit.OutcomeFailure
		if b.Reason == ReasonRateLimited {
			outcome = audit.OutcomeDenied
		}
		details := map[string]string{
			"count": strconv.Itoa(b.Count),
			"first": b.First.UTC().Format(time.RFC3339Nano),
			"last":  b.Last.UTC().Format(time.RFC3339Nano),
		}
		if b.Overflow {
			details["overflow"] = "true"
		}
		err := a.audit.Record(ctx, audit.Event{AgencyID: agencyID, Actor: audit.Actor{Type: audit.ActorAnonymous, Name: b.ClientID},
			Action: audit.ActionSFTPLoginRefused, TargetType: audit.TargetSFTPAccount, TargetName: b.ClientID,
			Outcome: outcome, Reason: b.Reason, Origin: audit.Origin{SourceIP: b.Addr}, Details: details})
		if err != nil {
			return i, fmt.Errorf("sshkeys: record refused sftp logins: %w", err)
		}
	}
	return len(batch), nil
}

// Run writes last use and refusal summaries periodically until ctx ends.
// Call Close afterwards, with a live context, for the last writes.
func (a *Authenticator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.lastUse.Run(ctx) }()
	go func() { defer wg.Done(); a.fails.Run(ctx) }()
	wg.Wait()
	return nil
}

// Flush writes pending last use and refusal summaries now; what fails to
// be written stays pending.
func (a *Authenticator) Flush(ctx context.Context) error {
	return errors.Join(a.fails.Flush(ctx), a.lastUse.Flush(ctx))
}

// FailureStats returns the counters of the refusal aggregation.
func (a *Authenticator) FailureStats() guard.FailureStats { return a.fails.Stats() }

// Close stops Run and writes what is pending, retrying refusal records
// until ctx ends.
func (a *Authenticator) Close(ctx context.Context) error {
	var err error
	a.closeOnce.Do(func() {
		err = errors.Join(a.fails.Close(ctx), a.lastUse.Close(ctx))
	})
	return err
}

// sameKey compares a stored "type base64" key with a presented key in
// constant time.
func sameKey(stored string, key ssh.PublicKey) bool {
	_, b64, ok := strings.Cut(stored, " ")
	if !ok {
		return false
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(blob, key.Marshal()) == 1
}

// accountRoot is <root>/<account>; the account name must be one plain path
// element.
func accountRoot(root, account string) (string, error) {
	if account == "" || account == "." || account == ".." || strings.ContainsAny(account, `/\`) || filepath.Base(account) != account {
		return "", fmt.Errorf("%w: account name is not a plain directory name", ErrRefused)
	}
	return filepath.Join(root, account), nil
}

// hostOf drops the port of an address.
func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// hold waits for d or until ctx ends.
func hold(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
