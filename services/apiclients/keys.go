package apiclients

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
	"keyconsole/services/oauth"
	"keyconsole/services/secrets"
)

// TokenKeyRecordType is the sealed-secret record type of token signing keys
// (agency 0, record id = kid).
const TokenKeyRecordType = "token_signing_key"

// Defaults of a KeyManager.
const (
	// DefaultRotateAfter is the age at which the active key is replaced.
	DefaultRotateAfter = 30 * 24 * time.Hour
	// DefaultActivationDelay is how long a new key is published before it
	// signs, so every replica (reloading each minute) and every resource
	// server (caching the JWKS for a minute) knows it before its first token.
	DefaultActivationDelay = 3 * time.Minute
	// DefaultReloadInterval is how often replicas reload the key list.
	DefaultReloadInterval = time.Minute
	// retryInterval is how often a replica without keys tries again.
	retryInterval = 5 * time.Second
)

// Key statuses as shown to operators (derived from the stored status and
// the time).
const (
	KeyPending = "pending"
	KeyActive  = "active"
	KeyRetired = "retired"
	KeyExpired = "expired"
)

// KeyConfig holds the dependencies and timings of a KeyManager.
type KeyConfig struct {
	DB     *models.DB
	Store  *models.TokenKeyStore
	Locker interface {
		LockPlatformKeys(ctx context.Context) error
	}
	Secrets SecretStore
	Audit   *audit.Recorder
	Issuer  *oauth.Issuer
	// RotateAfter is the age of the active key that triggers an automatic
	// rotation; DefaultRotateAfter when zero.
	RotateAfter time.Duration
	// ActivationDelay is how long a rotated-in key waits before signing;
	// DefaultActivationDelay when zero, none when negative.
	ActivationDelay time.Duration
	// ReloadInterval is how often Run reloads; DefaultReloadInterval when zero.
	ReloadInterval time.Duration
	Clock          func() time.Time
	Logger         *slog.Logger
}

// KeyManager keeps the token signing keys: a list in the database that
// every replica loads (the private keys sealed through KMS), the choice of
// the key that signs now, automatic and manual rotation, and the removal of
// retired keys once every token they signed has expired.
type KeyManager struct {
	cfg KeyConfig

	loadMu sync.Mutex
	mu     sync.Mutex
	loaded []loadedKey
	parsed map[string]oauth.SigningKey
	// next is the UnixNano time of the next scheduled change of the signing
	// key or the published set; Current reinstalls the keys once it passed.
	next  atomic.Int64
	ready atomic.Bool
}

type loadedKey struct {
	key         oauth.SigningKey
	activatesAt time.Time
}

// KeyInfo describes one signing key for operators.
type KeyInfo struct {
	models.TokenSigningKey
	// State is KeyPending, KeyActive, KeyRetired or KeyExpired at the time
	// of the listing.
	State string
}

// NewKeyManager returns a KeyManager for cfg; it loads nothing yet.
func NewKeyManager(cfg KeyConfig) *KeyManager {
	if cfg.RotateAfter == 0 {
		cfg.RotateAfter = DefaultRotateAfter
	}
	if cfg.ActivationDelay == 0 {
		cfg.ActivationDelay = DefaultActivationDelay
	}
	if cfg.ActivationDelay < 0 {
		cfg.ActivationDelay = 0
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &KeyManager{cfg: cfg, parsed: map[string]oauth.SigningKey{}}
}

func (m *KeyManager) clock() time.Time { return m.cfg.Clock().UTC().Truncate(time.Microsecond) }

// Ready reports whether a signing key is installed in the issuer.
func (m *KeyManager) Ready() bool { return m.ready.Load() }

// ErrNoSigningKey means no key is installed to sign tokens with.
var ErrNoSigningKey = errors.New("apiclients: no token signing key loaded")

// Check reports whether this replica can sign tokens now: a signing key is
// installed, and its private key as stored still opens through KMS and is
// the key installed. /readyz calls it (through a short cache), so a
// replica that cannot open the keys, say with the wrong master key, is
// taken out of service instead of answering 503 and an empty JWKS.
func (m *KeyManager) Check(ctx context.Context) error {
	if !m.Ready() {
		return ErrNoSigningKey
	}
	active, _ := m.cfg.Issuer.Keys()
	der, err := m.cfg.Secrets.Get(ctx, keyRef(active.KID))
	if err != nil {
		return fmt.Errorf("apiclients: open signing key %s: %w", active.KID, err)
	}
	k, err := oauth.UnmarshalPrivate(der)
	clear(der)
	if err != nil {
		return fmt.Errorf("apiclients: open signing key %s: %w", active.KID, err)
	}
	if k.KID != active.KID || !k.Private.Equal(active.Private) {
		return fmt.Errorf("apiclients: open signing key %s: %w", active.KID, oauth.ErrInvalidSigningKey)
	}
	return nil
}

func keyRef(kid string) secrets.Ref {
	return secrets.Ref{AgencyID: models.PlatformAgencyID, RecordType: TokenKeyRecordType, RecordID: kid}
}

// Load reads the list of live keys, opens the private keys it has not
// opened before, and installs the signing key and the published set in the
// issuer.
func (m *KeyManager) Load(ctx context.Context) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	rows, err := m.cfg.Store.Live(ctx)
	if err != nil {
		return fmt.Errorf("apiclients: load signing keys: %w", err)
	}
	loaded := make([]loadedKey, 0, len(rows))
	keep := make(map[string]bool, len(rows))
	for _, r := range rows {
		m.mu.Lock()
		k, ok := m.parsed[r.KID]
		m.mu.Unlock()
		if !ok {
			der, err := m.cfg.Secrets.Get(ctx, keyRef(r.KID))
			if err != nil {
				return fmt.Errorf("apiclients: load signing key %s: %w", r.KID, err)
			}
			k, err = oauth.UnmarshalPrivate(der)
			clear(der)
			if err != nil {
				return fmt.Errorf("apiclients: load signing key %s: %w", r.KID, err)
			}
			if k.KID != r.KID {
				return fmt.Errorf("apiclients: load signing key %s: %w", r.KID, oauth.ErrInvalidSigningKey)
			}
		}
		k.CreatedAt = r.CreatedAt
		k.NotAfter, k.PublishUntil = time.Time{}, time.Time{}
		if r.NotAfter != nil {
			k.NotAfter = *r.NotAfter
		}
		if r.PublishUntil != nil {
			k.PublishUntil = *r.PublishUntil
		}
		keep[r.KID] = true
		loaded = append(loaded, loadedKey{key: k, activatesAt: r.ActivatesAt})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for kid := range m.parsed {
		if !keep[kid] {
			delete(m.parsed, kid)
		}
	}
	for _, l := range loaded {
		m.parsed[l.key.KID] = l.key
	}
	m.loaded = loaded
	return m.installLocked(m.cfg.Clock())
}

// installLocked chooses the key that signs at now (the most recently
// activated key that is not past its NotAfter), publishes every key not past
// its PublishUntil (pending keys included), and schedules the next change.
func (m *KeyManager) installLocked(now time.Time) error {
	var signer *oauth.SigningKey
	var signerFrom time.Time
	var published []oauth.SigningKey
	next := time.Time{}
	later := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for i := range m.loaded {
		l := m.loaded[i]
		k := l.key
		later(l.activatesAt)
		later(k.NotAfter)
		later(k.PublishUntil)
		if !k.PublishUntil.IsZero() && !now.Before(k.PublishUntil) {
			continue
		}
		published = append(published, k)
		signs := !now.Before(l.activatesAt) && (k.NotAfter.IsZero() || now.Before(k.NotAfter))
		if signs && (signer == nil || l.activatesAt.After(signerFrom)) {
			kk := k
			signer, signerFrom = &kk, l.activatesAt
		}
	}
	if next.IsZero() {
		m.next.Store(now.Add(m.cfg.ReloadInterval).UnixNano())
	} else {
		m.next.Store(next.UnixNano())
	}
	if signer == nil {
		m.ready.Store(false)
		return nil
	}
	if err := m.cfg.Issuer.SetKeys(*signer, published); err != nil {
		m.ready.Store(false)
		return fmt.Errorf("apiclients: install signing keys: %w", err)
	}
	m.ready.Store(true)
	return nil
}

// Current makes sure the issuer signs with the right key at now: when a
// scheduled change (a pending key activating, a retired key stopping or
// leaving the published set) has passed since the last load, it reinstalls
// the loaded keys. It costs one atomic load otherwise.
func (m *KeyManager) Current(now time.Time) {
	if now.UnixNano() < m.next.Load() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.UnixNano() < m.next.Load() {
		return
	}
	if err := m.installLocked(now); err != nil {
		m.cfg.Logger.Error("apiclients: install signing keys", "error", err)
	}
}

// Ensure loads the keys and makes sure there is an active key that is not
// older than RotateAfter, creating or rotating one when needed, and removes
// retired keys whose publication ended. Replicas may call it concurrently:
// changes run under the platform key lock and re-read the list first.
func (m *KeyManager) Ensure(ctx context.Context) error {
	if _, err := m.rotate(ctx, systemActor(), audit.Origin{}, false); err != nil {
		return err
	}
	if err := m.Prune(ctx); err != nil {
		return err
	}
	return m.Load(ctx)
}

// Rotate generates a new signing key and makes it the active key: it is
// published at once and signs after the activation delay; the previous key
// keeps signing until then and stays published until its last token has
// expired. It returns the new key's record.
func (m *KeyManager) Rotate(ctx context.Context, actor audit.Actor, origin audit.Origin) (models.TokenSigningKey, error) {
	k, err := m.rotate(ctx, actor, origin, true)
	if err != nil {
		return models.TokenSigningKey{}, err
	}
	if err := m.Load(ctx); err != nil {
		return k, err
	}
	return k, nil
}

// rotate creates the first key, or (when forced, or when the active key is
// older than RotateAfter) rotates; it returns the new key's record, or a
// zero record when nothing was needed.
func (m *KeyManager) rotate(ctx context.Context, actor audit.Actor, origin audit.Origin, force bool) (models.TokenSigningKey, error) {
	needed := func(rows []models.TokenSigningKey, now time.Time) (active *models.TokenSigningKey, do bool) {
		for i := range rows {
			if rows[i].Status == models.TokenKeyActive {
				active = &rows[i]
			}
		}
		if active == nil {
			return nil, true
		}
		return active, force || now.Sub(active.CreatedAt) >= m.cfg.RotateAfter
	}
	// A look without the lock first: most calls have nothing to do.
	rows, err := m.cfg.Store.Live(ctx)
	if err != nil {
		return models.TokenSigningKey{}, fmt.Errorf("apiclients: rotate signing key: %w", err)
	}
	if _, do := needed(rows, m.clock()); !do {
		return models.TokenSigningKey{}, nil
	}
	var created models.TokenSigningKey
	err = m.cfg.DB.Tx(ctx, func(ctx context.Context) error {
		if err := m.cfg.Locker.LockPlatformKeys(ctx); err != nil {
			return err
		}
		rows, err := m.cfg.Store.Live(ctx)
		if err != nil {
			return err
		}
		now := m.clock()
		active, do := needed(rows, now)
		if !do {
			return nil
		}
		key, err := oauth.GenerateSigningKey(now)
		if err != nil {
			return err
		}
		der, err := key.MarshalPrivate()
		if err != nil {
			return err
		}
		err = m.cfg.Secrets.Put(ctx, keyRef(key.KID), der)
		clear(der)
		if err != nil {
			return err
		}
		activates := now
		if active != nil {
			activates = now.Add(m.cfg.ActivationDelay)
			// The old key signs until the new one takes over, and stays
			// published until the last token it signed has expired.
			old := oauth.SigningKey{KID: active.KID}
			if active.NotAfter != nil {
				old.NotAfter = *active.NotAfter
			}
			old = oauth.RetireKey(old, activates, m.cfg.Issuer.Lifetime(), m.cfg.Issuer.ClockSkew())
			if err := m.cfg.Store.Retire(ctx, active.KID, old.NotAfter, old.PublishUntil, now); err != nil {
				return err
			}
		}
		created = models.TokenSigningKey{KID: key.KID, Status: models.TokenKeyActive, CreatedAt: now, ActivatesAt: activates, UpdatedAt: now}
		if err := m.cfg.Store.Insert(ctx, &created); err != nil {
			return err
		}
		action, details := audit.ActionTokenKeyCreate, map[string]string{"activates_at": activates.Format(time.RFC3339)}
		if active != nil {
			action = audit.ActionTokenKeyRotate
			details["previous_kid"] = active.KID
			if force {
				details["trigger"] = "manual"
			} else {
				details["trigger"] = "age"
			}
		}
		return m.cfg.Audit.Record(ctx, audit.Event{
			AgencyID: models.PlatformAgencyID, Actor: actor, Action: action,
			TargetType: audit.TargetTokenKey, TargetID: key.KID, Outcome: audit.OutcomeSuccess,
			Origin: origin, Details: details,
		})
	})
	if err != nil {
		return models.TokenSigningKey{}, fmt.Errorf("apiclients: rotate signing key: %w", err)
	}
	return created, nil
}

// Prune expires retired keys whose publication has ended and destroys
// their private keys.
func (m *KeyManager) Prune(ctx context.Context) error {
	rows, err := m.cfg.Store.Live(ctx)
	if err != nil {
		return fmt.Errorf("apiclients: prune signing keys: %w", err)
	}
	now := m.clock()
	for _, r := range rows {
		if r.Status != models.TokenKeyRetired || r.PublishUntil == nil || now.Before(*r.PublishUntil) {
			continue
		}
		err := m.cfg.DB.Tx(ctx, func(ctx context.Context) error {
			ok, err := m.cfg.Store.Expire(ctx, r.KID, now)
			if err != nil || !ok {
				return err
			}
			if err := m.cfg.Secrets.Delete(ctx, keyRef(r.KID)); err != nil {
				return err
			}
			return m.cfg.Audit.Record(ctx, audit.Event{
				AgencyID: models.PlatformAgencyID, Actor: systemActor(), Action: audit.ActionTokenKeyExpire,
				TargetType: audit.TargetTokenKey, TargetID: r.KID, Outcome: audit.OutcomeSuccess,
			})
		})
		if err != nil {
			return fmt.Errorf("apiclients: prune signing key %s: %w", r.KID, err)
		}
	}
	return nil
}

// List returns every signing key with its state now, newest first.
func (m *KeyManager) List(ctx context.Context) ([]KeyInfo, error) {
	rows, err := m.cfg.Store.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("apiclients: list signing keys: %w", err)
	}
	now := m.clock()
	out := make([]KeyInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, KeyInfo{TokenSigningKey: r, State: KeyState(r, now)})
	}
	return out, nil
}

// KeyState derives the state of a key at now.
func KeyState(r models.TokenSigningKey, now time.Time) string {
	switch {
	case r.Status == models.TokenKeyExpired:
		return KeyExpired
	case r.Status == models.TokenKeyActive && now.Before(r.ActivatesAt):
		return KeyPending
	case r.Status == models.TokenKeyActive:
		return KeyActive
	case r.NotAfter != nil && now.Before(*r.NotAfter):
		// Replaced, but still signing until its successor activates.
		return KeyActive
	case r.PublishUntil != nil && !now.Before(*r.PublishUntil):
		return KeyExpired
	}
	return KeyRetired
}

// Run keeps the keys current until ctx ends: every ReloadInterval it
// reloads the list (picking up rotations made by other replicas or the
// CLI), rotates an active key older than RotateAfter and prunes retired
// keys; while no key is installed (KMS unavailable at start) it retries
// every few seconds.
func (m *KeyManager) Run(ctx context.Context) error {
	for {
		wait := m.cfg.ReloadInterval
		if err := m.Ensure(ctx); err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil
			}
			m.cfg.Logger.WarnContext(ctx, "apiclients: token signing keys not refreshed", "error", err)
		}
		if !m.Ready() && wait > retryInterval {
			wait = retryInterval
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
