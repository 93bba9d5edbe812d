package guard

import (
	"container/list"
	"errors"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"keyconsole/services/oauth"
)

// Limiter guards the token endpoint with token buckets and a failure
// slowdown, in bounded memory. It is safe for concurrent use.
//
// Design. The endpoint must survive floods and password-spraying without
// letting an attacker lock a legitimate client out, so nothing that an
// unauthenticated request can touch is keyed by client_id alone:
//
//   - Per source address, a token bucket (AddrRate/AddrBurst) counts every
//     request Allow lets through, authenticated or not.
//   - Per client_id, a token bucket (ClientRate/ClientBurst) counts only
//     successful authentications (RecordSuccess). Allow refuses a client
//     whose bucket is empty but never takes a token from it, so requests
//     without the secret cannot drain it.
//   - Failures (RecordFailure) are counted per (source address, client_id)
//     pair and per source address. Once a count reaches its threshold
//     (PairFailureThreshold, AddrFailureThreshold), that pair or address is
//     refused for BaseDelay, doubling with each further failure up to
//     MaxDelay. A count is forgotten FailureWindow after its last failure; a
//     success clears the pair's count (not the address's, so one valid
//     credential does not launder an address's failures).
//
// An attacker at address X hammering client A therefore blocks (X, A) and X,
// while client A at address Y is unaffected. That holds only while X is the
// attacker's own address: behind a load balancer the caller must pass the
// client's address (the web layer takes it from KEYCONSOLE_TRUSTED_PROXIES'
// forwarding header), never the balancer's, which every client shares. IPv6 addresses are grouped by
// their /64 prefix (IPv6PrefixBits), since one host usually holds a whole
// /64. Each table tracks at most MaxKeys entries: idle entries (a bucket
// untouched for IdleTTL, which refills it fully, or a failure count older
// than FailureWindow) are evicted first, then the least recently used.
// Evicting a failure count early only helps an attacker who controls
// MaxKeys distinct addresses, each of which is still rate limited.
type Limiter struct {
	cfg LimiterConfig

	mu           sync.Mutex
	clients      *lruTable[*rate.Limiter]
	addrs        *lruTable[*rate.Limiter]
	pairFailures *lruTable[failureState]
	addrFailures *lruTable[failureState]
}

// LimiterConfig configures a Limiter. Zero fields take the defaults shown.
type LimiterConfig struct {
	// ClientRate is the sustained rate of successful token requests per
	// client_id (default 5 per second); rate.Inf disables the limit.
	ClientRate rate.Limit
	// ClientBurst is the client bucket size (default 20).
	ClientBurst int
	// AddrRate is the sustained rate of requests per source address
	// (default 10 per second); rate.Inf disables the limit.
	AddrRate rate.Limit
	// AddrBurst is the address bucket size (default 50).
	AddrBurst int
	// PairFailureThreshold is the number of failures of one client_id from
	// one address that starts the slowdown (default 5).
	PairFailureThreshold int
	// AddrFailureThreshold is the number of failures from one address, any
	// client_id, that starts the slowdown (default 20).
	AddrFailureThreshold int
	// BaseDelay is the first refusal period (default 1 second).
	BaseDelay time.Duration
	// MaxDelay caps the refusal period (default 5 minutes).
	MaxDelay time.Duration
	// FailureWindow is how long a failure count is kept after its last
	// failure (default 15 minutes; raised to MaxDelay if shorter).
	FailureWindow time.Duration
	// IdleTTL is how long an untouched bucket is kept (default 10 minutes).
	IdleTTL time.Duration
	// MaxKeys caps the entries of each table (default 10000).
	MaxKeys int
	// IPv6PrefixBits is the IPv6 prefix length addresses are grouped by
	// (default 64).
	IPv6PrefixBits int
}

// LimiterStats counts the entries the Limiter tracks.
type LimiterStats struct {
	Clients, Addrs, PairFailures, AddrFailures int
}

type failureState struct {
	count        int
	lastFailure  time.Time
	blockedUntil time.Time
}

// NewLimiter returns a Limiter for cfg with defaults filled in.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	if cfg.ClientRate == 0 {
		cfg.ClientRate = 5
	}
	if cfg.ClientBurst == 0 {
		cfg.ClientBurst = 20
	}
	if cfg.AddrRate == 0 {
		cfg.AddrRate = 10
	}
	if cfg.AddrBurst == 0 {
		cfg.AddrBurst = 50
	}
	if cfg.PairFailureThreshold == 0 {
		cfg.PairFailureThreshold = 5
	}
	if cfg.AddrFailureThreshold == 0 {
		cfg.AddrFailureThreshold = 20
	}
	if cfg.BaseDelay == 0 {
		cfg.BaseDelay = time.Second
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 5 * time.Minute
	}
	if cfg.FailureWindow == 0 {
		cfg.FailureWindow = 15 * time.Minute
	}
	if cfg.IdleTTL == 0 {
		cfg.IdleTTL = 10 * time.Minute
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = 10000
	}
	if cfg.IPv6PrefixBits == 0 {
		cfg.IPv6PrefixBits = 64
	}
	switch {
	case cfg.ClientRate < 0 || cfg.AddrRate < 0:
		return nil, errors.New("oauth: limiter: rates must be positive")
	case cfg.ClientBurst < 1 || cfg.AddrBurst < 1:
		return nil, errors.New("oauth: limiter: bursts must be at least 1")
	case cfg.PairFailureThreshold < 1 || cfg.AddrFailureThreshold < 1:
		return nil, errors.New("oauth: limiter: failure thresholds must be at least 1")
	case cfg.BaseDelay < 0 || cfg.MaxDelay < cfg.BaseDelay:
		return nil, errors.New("oauth: limiter: need 0 <= BaseDelay <= MaxDelay")
	case cfg.IdleTTL < 0 || cfg.FailureWindow < 0:
		return nil, errors.New("oauth: limiter: IdleTTL and FailureWindow must be positive")
	case cfg.MaxKeys < 1:
		return nil, errors.New("oauth: limiter: MaxKeys must be at least 1")
	case cfg.IPv6PrefixBits < 1 || cfg.IPv6PrefixBits > 128:
		return nil, errors.New("oauth: limiter: IPv6PrefixBits must be between 1 and 128")
	}
	if cfg.FailureWindow < cfg.MaxDelay {
		cfg.FailureWindow = cfg.MaxDelay
	}
	return &Limiter{
		cfg:          cfg,
		clients:      newLRUTable[*rate.Limiter](cfg.MaxKeys, cfg.IdleTTL),
		addrs:        newLRUTable[*rate.Limiter](cfg.MaxKeys, cfg.IdleTTL),
		pairFailures: newLRUTable[failureState](cfg.MaxKeys, cfg.FailureWindow),
		addrFailures: newLRUTable[failureState](cfg.MaxKeys, cfg.FailureWindow),
	}, nil
}

// Allow reports whether a token request from addr (an IP address, with or
// without a port) for clientID may proceed at now, and if not, how long the
// caller should wait (for a Retry-After header). clientID is the client_id
// as presented, or "" when the request could not be parsed; then only the
// address is checked. A request let through takes one token from the
// address bucket.
func (l *Limiter) Allow(clientID, addr string, now time.Time) (ok bool, retryAfter time.Duration) {
	ak := l.addrKey(addr)
	clientID = truncate(clientID, oauth.MaxClientIDLen)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictIdle(now)

	if st, found := l.addrFailures.get(ak, now); found && now.Before(st.blockedUntil) {
		return false, st.blockedUntil.Sub(now)
	}
	if clientID != "" {
		if st, found := l.pairFailures.get(pairKey(ak, clientID), now); found && now.Before(st.blockedUntil) {
			return false, st.blockedUntil.Sub(now)
		}
		if b, found := l.clients.get(clientID, now); found && (*b).Limit() != rate.Inf {
			if tokens := (*b).TokensAt(now); tokens < 1 {
				return false, tokenWait(1-tokens, (*b).Limit())
			}
		}
	}
	b := l.addrs.getOrCreate(ak, now, func() *rate.Limiter {
		return rate.NewLimiter(l.cfg.AddrRate, l.cfg.AddrBurst)
	})
	r := (*b).ReserveN(now, 1)
	if !r.OK() {
		return false, l.cfg.MaxDelay
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// RecordFailure counts a failed token request (unknown client, wrong
// secret, revoked or expired credential, malformed request) from addr for
// clientID at now; clientID may be "" when none was presented.
func (l *Limiter) RecordFailure(clientID, addr string, now time.Time) {
	ak := l.addrKey(addr)
	clientID = truncate(clientID, oauth.MaxClientIDLen)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictIdle(now)
	l.fail(l.addrFailures.getOrCreate(ak, now, zeroFailure), now, l.cfg.AddrFailureThreshold)
	if clientID != "" {
		l.fail(l.pairFailures.getOrCreate(pairKey(ak, clientID), now, zeroFailure), now, l.cfg.PairFailureThreshold)
	}
}

// RecordSuccess records a successful authentication of clientID from addr
// at now: it clears the failure count of that (address, client_id) pair and
// takes one token from the client's bucket.
func (l *Limiter) RecordSuccess(clientID, addr string, now time.Time) {
	ak := l.addrKey(addr)
	clientID = truncate(clientID, oauth.MaxClientIDLen)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictIdle(now)
	if clientID == "" {
		return
	}
	l.pairFailures.delete(pairKey(ak, clientID))
	b := l.clients.getOrCreate(clientID, now, func() *rate.Limiter {
		return rate.NewLimiter(l.cfg.ClientRate, l.cfg.ClientBurst)
	})
	// A reservation (unlike AllowN) may overdraw the bucket, so concurrent
	// successes that all passed Allow still count in full.
	(*b).ReserveN(now, 1)
}

// Stats returns the number of entries in each table.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LimiterStats{
		Clients:      l.clients.len(),
		Addrs:        l.addrs.len(),
		PairFailures: l.pairFailures.len(),
		AddrFailures: l.addrFailures.len(),
	}
}

func (l *Limiter) fail(st *failureState, now time.Time, threshold int) {
	if !st.lastFailure.IsZero() && now.Sub(st.lastFailure) > l.cfg.FailureWindow {
		*st = failureState{}
	}
	st.count++
	st.lastFailure = now
	if st.count >= threshold {
		d := backoff(l.cfg.BaseDelay, l.cfg.MaxDelay, st.count-threshold)
		if until := now.Add(d); until.After(st.blockedUntil) {
			st.blockedUntil = until
		}
	}
}

func (l *Limiter) evictIdle(now time.Time) {
	l.clients.evictIdle(now)
	l.addrs.evictIdle(now)
	l.pairFailures.evictIdle(now)
	l.addrFailures.evictIdle(now)
}

// addrKey normalises a source address: the port is dropped, IPv4-mapped
// IPv6 becomes IPv4, and IPv6 is reduced to its prefix. An unparsable value
// is kept as it is (truncated).
func (l *Limiter) addrKey(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return truncate(addr, 64)
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		if p, err := ip.Prefix(l.cfg.IPv6PrefixBits); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

func pairKey(addrKey, clientID string) string { return addrKey + "\x00" + clientID }

func zeroFailure() failureState { return failureState{} }

// backoff returns base * 2^n, at most max.
func backoff(base, max time.Duration, n int) time.Duration {
	if base <= 0 {
		return 0
	}
	if n >= 62 {
		return max
	}
	d := base << n
	if d <= 0 || d>>n != base || d > max {
		return max
	}
	return d
}

// tokenWait returns how long a bucket filling at r per second takes to
// gain missing tokens.
func tokenWait(missing float64, r rate.Limit) time.Duration {
	if r <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(missing / float64(r) * float64(time.Second))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// lruTable is a map with a size cap and idle expiry, least recently used
// first out. It is not safe for concurrent use.
type lruTable[V any] struct {
	max     int
	ttl     time.Duration
	order   *list.List // front: most recently used; values are *lruEntry[V]
	entries map[string]*list.Element
}

type lruEntry[V any] struct {
	key  string
	last time.Time
	val  V
}

func newLRUTable[V any](max int, ttl time.Duration) *lruTable[V] {
	return &lruTable[V]{max: max, ttl: ttl, order: list.New(), entries: make(map[string]*list.Element)}
}

func (t *lruTable[V]) len() int { return len(t.entries) }

// get returns the value for key and marks it used at now.
func (t *lruTable[V]) get(key string, now time.Time) (*V, bool) {
	el, ok := t.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*lruEntry[V])
	if now.After(e.last) {
		e.last = now
	}
	t.order.MoveToFront(el)
	return &e.val, true
}

// getOrCreate returns the value for key, creating it with mk (and evicting
// the least recently used entry when full), and marks it used at now.
func (t *lruTable[V]) getOrCreate(key string, now time.Time, mk func() V) *V {
	if v, ok := t.get(key, now); ok {
		return v
	}
	for len(t.entries) >= t.max {
		t.removeElement(t.order.Back())
	}
	e := &lruEntry[V]{key: key, last: now, val: mk()}
	t.entries[key] = t.order.PushFront(e)
	return &e.val
}

func (t *lruTable[V]) delete(key string) {
	if el, ok := t.entries[key]; ok {
		t.removeElement(el)
	}
}

// evictIdle removes entries not used for longer than the ttl. Entries are
// in recency order, so it stops at the first recent one.
func (t *lruTable[V]) evictIdle(now time.Time) {
	for el := t.order.Back(); el != nil; el = t.order.Back() {
		if now.Sub(el.Value.(*lruEntry[V]).last) <= t.ttl {
			return
		}
		t.removeElement(el)
	}
}

func (t *lruTable[V]) removeElement(el *list.Element) {
	delete(t.entries, el.Value.(*lruEntry[V]).key)
	t.order.Remove(el)
}
