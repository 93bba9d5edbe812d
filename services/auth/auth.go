package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"keyconsole/models"
	"keyconsole/services/audit"
)

// Session errors returned by Resolve.
var (
	// ErrNoSession means there is no live session for the token.
	ErrNoSession = errors.New("auth: no session")
	// ErrIdle means the session was idle longer than the idle timeout.
	ErrIdle = errors.New("auth: session idle timeout")
	// ErrExpired means the session outlived the absolute timeout.
	ErrExpired = errors.New("auth: session expired")
	// ErrDisabled means the user was disabled in the console.
	ErrDisabled = errors.New("auth: user disabled")
)

// Config holds the session rules.
type Config struct {
	// Operators are the KEYCONSOLE_OPERATORS entries (see ParseOperator);
	// entries that do not parse grant nothing.
	Operators       []string
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// RecentAuth is how recent a sign-in must be for sensitive actions.
	RecentAuth time.Duration
	// MaxFailures failed sign-ins of one account within FailureWindow pause
	// that account's sign-ins (DefaultMaxFailures, DefaultFailureWindow).
	MaxFailures   int
	FailureWindow time.Duration
	Clock         func() time.Time
}

// Principal is the signed-in user of one request.
type Principal struct {
	SessionID       string
	User            models.User
	Provider        string
	Roles           map[int64]string
	CurrentAgencyID int64
	AuthTime        time.Time
	CreatedAt       time.Time
	// Agencies are the agencies of Roles ordered by name, read with the
	// session by Resolve; nil when they were not read.
	Agencies []models.Agency
}

// IsOperator reports whether the principal is a platform operator.
func (p Principal) IsOperator() bool { return p.User.IsOperator }

// RoleIn returns the principal's role in an agency, or "" for none. Platform
// operators can see every agency with the viewer role unless mapped higher.
func (p Principal) RoleIn(agencyID int64) string {
	if r := p.Roles[agencyID]; r != "" {
		return r
	}
	if p.User.IsOperator {
		return models.RoleViewer
	}
	return ""
}

// Actor is the principal as an audit actor.
func (p Principal) Actor() audit.Actor {
	return audit.Actor{Type: audit.ActorUser, ID: strconv.FormatInt(p.User.ID, 10), Name: p.User.Display()}
}

// AgencyIDs lists the agencies the principal has a mapped role in.
func (p Principal) AgencyIDs() []int64 {
	ids := make([]int64, 0, len(p.Roles))
	for id := range p.Roles {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Service signs users in and keeps their sessions.
type Service struct {
	db       *models.DB
	users    *models.UserStore
	agencies *models.AgencyStore
	sessions *models.SessionStore
	failures *models.SignInFailureStore
	audit    *audit.Recorder
	cfg      Config
	// operators are the parsed Config.Operators.
	operators []Operator
}

// NewService returns the sign-in service.
func NewService(db *models.DB, users *models.UserStore, agencies *models.AgencyStore, sessions *models.SessionStore, rec *audit.Recorder, cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.AbsoluteTimeout == 0 {
		cfg.AbsoluteTimeout = 12 * time.Hour
	}
	if cfg.RecentAuth == 0 {
		cfg.RecentAuth = 10 * time.Minute
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.FailureWindow <= 0 {
		cfg.FailureWindow = DefaultFailureWindow
	}
	var ops []Operator
	for _, e := range cfg.Operators {
		if op, err := ParseOperator(e); err == nil {
			ops = append(ops, op)
		}
	}
	return &Service{db: db, users: users, agencies: agencies, sessions: sessions, failures: models.NewSignInFailureStore(db), audit: rec, cfg: cfg, operators: ops}
}

// Config returns the session rules in force.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) now() time.Time { return s.cfg.Clock().UTC().Truncate(time.Microsecond) }

// HashToken returns the stored id of a session token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// SignIn provisions or updates the user behind verified claims, keeps their
// groups (from which each request resolves their agency roles), starts a
// new session and audits the outcome. It returns the session token for the cookie. An account with too
// many recent failed sign-ins is refused (RefusedThrottled) until the
// failures age out; a refused sign-in counts as a failure of the account and
// a successful one clears its failures.
func (s *Service) SignIn(ctx context.Context, p ProviderInfo, c Claims, origin audit.Origin) (Principal, string, error) {
	now := s.now()
	var (
		pr    Principal
		token string
	)
	var refusal *Refusal
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		u, err := s.users.ByIdentity(ctx, p.ID, c.Subject)
		switch {
		case errors.Is(err, models.ErrNotFound):
			u = models.User{Provider: p.ID, Subject: c.Subject, CreatedAt: now}
		case err != nil:
			return err
		}
		until, err := s.lockedUntil(ctx, p.ID, c.Subject, now)
		if err != nil {
			return err
		}
		if !until.IsZero() {
			actor := anonymousActor(p.ID, c.Subject)
			if u.ID != 0 {
				actor = userActor(u)
			}
			refusal, err = s.refuseLocked(ctx, actor, p.ID, until, origin)
			return err
		}
		authTime, rf := authTimeOf(c, now, false)
		if rf != nil {
			refusal = rf
			actor := anonymousActor(p.ID, c.Subject)
			if u.ID != 0 {
				actor = userActor(u)
			}
			if _, err := s.recordFailure(ctx, p.ID, c.Subject, refusal.Code, now); err != nil {
				return err
			}
			return s.audit.Record(ctx, audit.Event{AgencyID: models.PlatformAgencyID, Actor: actor, Action: audit.ActionSignInRefused,
				TargetType: "provider", TargetID: p.ID, Outcome: audit.OutcomeDenied, Reason: refusal.Code, Origin: origin,
				Details: map[string]string{"auth_time": "future"}})
		}
		// Operator only from a claim the provider vouches for: the subject,
		// Azure's object id, or an e-mail the kind verifies (EmailVouched).
		isOperator, opRefused := s.operatorMatch(p, c)
		// One upsert inserts the user or reads it again, locked until the
		// sign-in commits (PostgreSQL): a concurrent first sign-in of the
		// same person may have inserted it since the read above, or a
		// deactivation committed. The disabled check and the Save below
		// must see that row, or the Save would write a stale disabled_at
		// back; a deactivation arriving later waits, then ends the session.
		u.Email, u.Name, u.IsOperator, u.UpdatedAt = c.Email, c.Name, isOperator, now
		if err := s.users.Provision(ctx, &u); err != nil {
			return err
		}
		u.Email, u.Name, u.IsOperator, u.UpdatedAt = c.Email, c.Name, isOperator, now
		if u.Disabled() {
			refusal = &Refusal{RefusedDisabled, "Your account has been disabled in the console. Ask your agency administrator."}
			if _, err := s.recordFailure(ctx, p.ID, c.Subject, refusal.Code, now); err != nil {
				return err
			}
			return s.audit.Record(ctx, audit.Event{AgencyID: models.PlatformAgencyID, Actor: userActor(u), Action: audit.ActionSignInRefused,
				TargetType: "user", TargetID: strconv.FormatInt(u.ID, 10), TargetName: u.Display(), Outcome: audit.OutcomeDenied, Reason: refusal.Code,
				Origin: origin, Details: map[string]string{"provider": p.ID}})
		}
		maps, err := s.agencies.MappingsFor(ctx, p.ID, c.Groups)
		if err != nil {
			return err
		}
		roles := map[int64]string{}
		for _, m := range maps {
			if models.RoleRank(m.Role) > models.RoleRank(roles[m.AgencyID]) {
				roles[m.AgencyID] = m.Role
			}
		}
		if len(roles) == 0 && !u.IsOperator {
			// Keep the user's record current but hold no roles and no session.
			u.LastSignInAt = nil
			if err := s.users.Save(ctx, &u); err != nil {
				return err
			}
			// The latest groups count for the user's other sessions too.
			if err := s.users.SetGroups(ctx, u.ID, c.Groups); err != nil {
				return err
			}
			refusal = &Refusal{RefusedNoAccess, "You signed in successfully, but none of your groups gives access to an agency in this console. Ask your agency administrator to map your group to a role."}
			details := map[string]string{"provider": p.ID, "groups": strconv.Itoa(len(c.Groups))}
			if opRefused != "" {
				refusal.Message += operatorRefusedText(p, c)
				details["operator_refused"] = opRefused
			}
			if _, err := s.recordFailure(ctx, p.ID, c.Subject, refusal.Code, now); err != nil {
				return err
			}
			return s.audit.Record(ctx, audit.Event{AgencyID: models.PlatformAgencyID, Actor: userActor(u), Action: audit.ActionSignInRefused,
				TargetType: "user", TargetID: strconv.FormatInt(u.ID, 10), TargetName: u.Display(), Outcome: audit.OutcomeDenied, Reason: refusal.Code,
				Origin: origin, Details: details})
		}
		u.LastSignInAt = &now
		if err := s.users.Save(ctx, &u); err != nil {
			return err
		}
		if err := s.clearFailures(ctx, p.ID, c.Subject); err != nil {
			return err
		}
		// Only the groups are kept: every request resolves the roles from
		// them and the mappings as they are then (SessionStore.Principal), so
		// the user's open sessions follow mapping changes and this sign-in.
		if err := s.users.SetGroups(ctx, u.ID, c.Groups); err != nil {
			return err
		}
		token, err = newToken()
		if err != nil {
			return err
		}
		sess := models.Session{ID: HashToken(token), UserID: u.ID, Provider: p.ID, CreatedAt: now, LastSeenAt: now, AuthTime: authTime,
			SourceIP: origin.SourceIP, UserAgent: clip(origin.UserAgent, 400)}
		pr = Principal{SessionID: sess.ID, User: u, Provider: p.ID, Roles: roles, AuthTime: authTime, CreatedAt: now}
		if ids := pr.AgencyIDs(); len(ids) > 0 {
			first := ids[0]
			sess.CurrentAgencyID = &first
			pr.CurrentAgencyID = first
		}
		if err := s.sessions.Create(ctx, &sess); err != nil {
			return err
		}
		details := map[string]string{"provider": p.ID, "roles": rolesSummary(roles), "operator": strconv.FormatBool(u.IsOperator)}
		if opRefused != "" {
			details["operator_refused"] = opRefused
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: pr.CurrentAgencyID, Actor: pr.Actor(), Action: audit.ActionSignIn,
			TargetType: "session", TargetID: sess.ID[:12], TargetName: u.Display(), Outcome: audit.OutcomeSuccess, Origin: origin,
			Details: details})
	})
	if err != nil {
		return Principal{}, "", fmt.Errorf("auth: sign in: %w", err)
	}
	if refusal != nil {
		return Principal{}, "", refusal
	}
	return pr, token, nil
}

func rolesSummary(roles map[int64]string) string {
	parts := make([]string, 0, len(roles))
	for id, r := range roles {
		parts = append(parts, strconv.FormatInt(id, 10)+"="+r)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func userActor(u models.User) audit.Actor {
	return audit.Actor{Type: audit.ActorUser, ID: strconv.FormatInt(u.ID, 10), Name: u.Display()}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// RecordRefusal audits a sign-in refused before any user was known (bad state,
// bad nonce, invalid token, provider error, domain or overage rules). A
// refusal naming a subject counts as a failed sign-in of that account.
func (s *Service) RecordRefusal(ctx context.Context, providerID, code, subject string, origin audit.Origin) error {
	now := s.now()
	return s.db.Tx(ctx, func(ctx context.Context) error {
		until, err := s.recordFailure(ctx, providerID, subject, code, now)
		if err != nil {
			return err
		}
		var details map[string]string
		if !until.IsZero() {
			details = map[string]string{"paused_until": until.UTC().Format(time.RFC3339)}
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: models.PlatformAgencyID, Actor: anonymousActor(providerID, subject), Action: audit.ActionSignInRefused,
			TargetType: "provider", TargetID: providerID, Outcome: audit.OutcomeDenied, Reason: code, Origin: origin, Details: details})
	})
}

// Resolve returns the principal of a live session, enforcing the idle and
// absolute timeouts and the user's disabled flag on every call.
func (s *Service) Resolve(ctx context.Context, token string, origin audit.Origin) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoSession
	}
	now := s.now()
	// The session, its user, the user's roles and their agencies in one
	// query, fresh on every request.
	sp, err := s.sessions.Principal(ctx, HashToken(token))
	if errors.Is(err, models.ErrNotFound) {
		return Principal{}, ErrNoSession
	}
	if err != nil {
		return Principal{}, fmt.Errorf("auth: resolve: %w", err)
	}
	sess, u := sp.Session, sp.User
	if sess.RevokedAt != nil {
		return Principal{}, ErrNoSession
	}
	pr := Principal{SessionID: sess.ID, User: u, Provider: sess.Provider, AuthTime: sess.AuthTime, CreatedAt: sess.CreatedAt}
	if sess.CurrentAgencyID != nil {
		pr.CurrentAgencyID = *sess.CurrentAgencyID
	}
	var reason error
	switch {
	case u.Disabled():
		reason = ErrDisabled
	case now.Sub(sess.CreatedAt) >= s.cfg.AbsoluteTimeout:
		reason = ErrExpired
	case now.Sub(sess.LastSeenAt) >= s.cfg.IdleTimeout:
		reason = ErrIdle
	}
	if reason != nil {
		err := s.db.Tx(ctx, func(ctx context.Context) error {
			ended, err := s.sessions.Revoke(ctx, sess.ID, reasonCode(reason), now)
			if err != nil || !ended {
				return err
			}
			return s.audit.Record(ctx, audit.Event{AgencyID: pr.CurrentAgencyID, Actor: pr.Actor(), Action: audit.ActionSessionTimeout,
				TargetType: "session", TargetID: sess.ID[:12], TargetName: u.Display(), Outcome: audit.OutcomeSuccess, Reason: reasonCode(reason), Origin: origin})
		})
		if err != nil {
			return Principal{}, fmt.Errorf("auth: end session: %w", err)
		}
		return Principal{}, reason
	}
	pr.Roles, pr.Agencies = sp.Roles, sp.Agencies
	// Activity is written at most every 30 seconds: enough precision for a
	// 30-minute idle rule without a database write on every request.
	if now.Sub(sess.LastSeenAt) > 30*time.Second {
		if err := s.sessions.Touch(ctx, sess.ID, now); err != nil {
			return Principal{}, fmt.Errorf("auth: resolve: %w", err)
		}
	}
	return pr, nil
}

func reasonCode(err error) string {
	switch {
	case errors.Is(err, ErrIdle):
		return "idle_timeout"
	case errors.Is(err, ErrExpired):
		return "absolute_timeout"
	case errors.Is(err, ErrDisabled):
		return "user_disabled"
	}
	return "ended"
}

// SignOut ends the session on the server and audits it.
func (s *Service) SignOut(ctx context.Context, p Principal, origin audit.Origin) error {
	now := s.now()
	return s.db.Tx(ctx, func(ctx context.Context) error {
		ended, err := s.sessions.Revoke(ctx, p.SessionID, "sign_out", now)
		if err != nil || !ended {
			return err
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: p.CurrentAgencyID, Actor: p.Actor(), Action: audit.ActionSignOut,
			TargetType: "session", TargetID: p.SessionID[:12], TargetName: p.User.Display(), Outcome: audit.OutcomeSuccess, Origin: origin})
	})
}

// AuthTimeSkew is how far ahead of this server's clock an identity
// provider's auth_time may be (clocks drift); it is then stored as now. A
// later auth_time is refused: stored, it would make a session look
// recently signed in for longer than it was.
const AuthTimeSkew = 2 * time.Minute

// authTimeOf is the sign-in time to keep for the claims: their auth_time,
// never after now, or now when the token has none and none was required.
func authTimeOf(c Claims, now time.Time, required bool) (time.Time, *Refusal) {
	switch {
	case c.AuthTime.IsZero() && required:
		return time.Time{}, &Refusal{RefusedClaims, "The identity provider did not say when you last entered your credentials (auth_time), so this sign-in cannot confirm it is you. Try again; if it keeps happening, ask your administrator to check the provider."}
	case c.AuthTime.IsZero():
		return now, nil
	case c.AuthTime.After(now.Add(AuthTimeSkew)):
		return time.Time{}, &Refusal{RefusedClaims, "The identity provider's clock is ahead of the console's (its sign-in time is in the future), so the sign-in was not accepted. Try again in a moment; if it keeps happening, ask your administrator to check the clocks."}
	case c.AuthTime.After(now):
		return now, nil
	}
	return c.AuthTime.UTC(), nil
}

// Recent reports whether the principal signed in recently enough for a
// sensitive action.
func (s *Service) Recent(p Principal) bool {
	return s.now().Sub(p.AuthTime) < s.cfg.RecentAuth
}

// Reauthenticated records a fresh sign-in of the same user on an existing
// session (the "recent sign-in" round trip).
func (s *Service) Reauthenticated(ctx context.Context, p Principal, c Claims, origin audit.Origin) error {
	now := s.now()
	if c.Subject != p.User.Subject {
		return &Refusal{RefusedClaims, "You signed in again as a different user. Sign out first to switch accounts."}
	}
	var refusal *Refusal
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		until, err := s.lockedUntil(ctx, p.Provider, c.Subject, now)
		if err != nil || until.IsZero() {
			return err
		}
		refusal, err = s.refuseLocked(ctx, p.Actor(), p.Provider, until, origin)
		return err
	})
	if err != nil {
		return fmt.Errorf("auth: reauthenticate: %w", err)
	}
	if refusal != nil {
		return refusal
	}
	// The round trip sent max_age, so auth_time is required (OIDC Core
	// 3.1.2.1) and must show the credentials were asked for just now.
	at, rf := authTimeOf(c, now, true)
	if rf != nil {
		return rf
	}
	if now.Sub(at) >= s.cfg.RecentAuth {
		return &Refusal{RefusedClaims, "The identity provider did not ask for your credentials again. Try again."}
	}
	return s.db.Tx(ctx, func(ctx context.Context) error {
		if err := s.sessions.SetAuthTime(ctx, p.SessionID, at); err != nil {
			return err
		}
		if err := s.clearFailures(ctx, p.Provider, c.Subject); err != nil {
			return err
		}
		return s.audit.Record(ctx, audit.Event{AgencyID: p.CurrentAgencyID, Actor: p.Actor(), Action: audit.ActionReauth,
			TargetType: "session", TargetID: p.SessionID[:12], TargetName: p.User.Display(), Outcome: audit.OutcomeSuccess, Origin: origin})
	})
}

// SwitchAgency points the session at another agency the principal can see.
func (s *Service) SwitchAgency(ctx context.Context, p Principal, agencyID int64) error {
	if p.RoleIn(agencyID) == "" {
		return fmt.Errorf("auth: switch agency: %w", models.ErrNotFound)
	}
	if _, err := s.agencies.ByID(ctx, agencyID); err != nil {
		return fmt.Errorf("auth: switch agency: %w", err)
	}
	return s.sessions.SetAgency(ctx, p.SessionID, agencyID)
}

// StartAttempt records a started authorization request by the hash of its state.
func (s *Service) StartAttempt(ctx context.Context, stateHash, provider string) error {
	now := s.now()
	return s.db.Tx(ctx, func(ctx context.Context) error {
		if err := s.sessions.PruneAttempts(ctx, now.Add(-time.Hour)); err != nil {
			return err
		}
		return s.sessions.CreateAttempt(ctx, &models.LoginAttempt{StateHash: stateHash, Provider: provider, CreatedAt: now})
	})
}

// ConsumeAttempt accepts a callback's state once; a replay gets models.ErrNotFound.
func (s *Service) ConsumeAttempt(ctx context.Context, stateHash string, maxAge time.Duration) (models.LoginAttempt, error) {
	return s.sessions.ConsumeAttempt(ctx, stateHash, s.now(), maxAge)
}
