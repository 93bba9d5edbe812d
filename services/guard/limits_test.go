package guard

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

var limiterT0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

func newTestLimiter(t *testing.T, cfg LimiterConfig) *Limiter {
	t.Helper()
	l, err := NewLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestAttackerDoesNotLockOutClient: an attacker at one address failing
// against client A, and flooding with requests, must not stop client A at
// another address.
func TestAttackerDoesNotLockOutClient(t *testing.T) {
	l := newTestLimiter(t, LimiterConfig{})
	const attacker, legit = "203.0.113.66:4444", "198.51.100.7:5555"
	const clientA = "ecd_prd_aaaaaaaaaaaaaaaaaaaa"
	now := limiterT0
	refused := 0
	for i := range 2000 {
		now = now.Add(10 * time.Millisecond)
		if ok, _ := l.Allow(clientA, attacker, now); ok {
			l.RecordFailure(clientA, attacker, now)
		} else {
			refused++
		}
		// The real client keeps getting tokens throughout, at a modest rate.
		if i%50 == 0 {
			ok, wait := l.Allow(clientA, legit, now)
			if !ok {
				t.Fatalf("request %d: client A from its own address refused (retry after %v)", i, wait)
			}
			l.RecordSuccess(clientA, legit, now)
		}
	}
	if refused < 1900 {
		t.Fatalf("attacker refused %d of 2000 times, want nearly all", refused)
	}
	if ok, wait := l.Allow(clientA, attacker, now); ok || wait <= 0 {
		t.Fatalf("attacker allowed = %v, retry after %v; want refused with a delay", ok, wait)
	}
	// The pair slowdown kept the attacker's failures below the address
	// threshold, so the address itself still serves other clients (a NAT
	// shared with the attacker is not cut off).
	if ok, _ := l.Allow("ecd_prd_bbbbbbbbbbbbbbbbbbbb", attacker, now); !ok {
		t.Fatal("attacker address refused for another client")
	}
	if ok, _ := l.Allow(clientA, legit, now); !ok {
		t.Fatal("client A from its own address refused at the end")
	}
}

// TestClientBucketCountsOnlySuccesses: unauthenticated requests cannot drain
// a client's bucket; authenticated ones can, from any address.
func TestClientBucketCountsOnlySuccesses(t *testing.T) {
	l := newTestLimiter(t, LimiterConfig{ClientRate: 1, ClientBurst: 3, AddrRate: rate.Inf, AddrBurst: 1, PairFailureThreshold: 1000, AddrFailureThreshold: 1000})
	const client = "ecd_stg_cccccccccccccccccccc"
	now := limiterT0
	for i := range 100 {
		addr := fmt.Sprintf("192.0.2.%d", i%250)
		if ok, _ := l.Allow(client, addr, now); !ok {
			t.Fatalf("request %d without success refused", i)
		}
		l.RecordFailure(client, addr, now)
	}
	for i := range 3 {
		addr := fmt.Sprintf("198.51.100.%d", i)
		if ok, _ := l.Allow(client, addr, now); !ok {
			t.Fatalf("success %d refused within the burst", i)
		}
		l.RecordSuccess(client, addr, now)
	}
	ok, wait := l.Allow(client, "198.51.100.200", now)
	if ok || wait < 900*time.Millisecond || wait > time.Second {
		t.Fatalf("after the burst: allowed %v, retry after %v; want refused for about 1s", ok, wait)
	}
	if ok, _ := l.Allow("ecd_stg_dddddddddddddddddddd", "198.51.100.200", now); !ok {
		t.Fatal("another client refused")
	}
	if ok, _ := l.Allow(client, "198.51.100.200", now.Add(time.Second)); !ok {
		t.Fatal("client refused after its bucket refilled")
	}
}

func TestPairSlowdown(t *testing.T) {
	cfg := LimiterConfig{
		AddrRate: rate.Inf, AddrBurst: 1, PairFailureThreshold: 3, AddrFailureThreshold: 1000,
		BaseDelay: time.Second, MaxDelay: 8 * time.Second, FailureWindow: time.Minute,
	}
	const addr, client = "192.0.2.10", "ecd_stg_eeeeeeeeeeeeeeeeeeee"
	tests := []struct {
		failures int
		wantWait time.Duration
	}{
		{1, 0}, {2, 0}, {3, time.Second}, {4, 2 * time.Second}, {5, 4 * time.Second}, {6, 8 * time.Second}, {7, 8 * time.Second}, {30, 8 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d failures", tt.failures), func(t *testing.T) {
			l := newTestLimiter(t, cfg)
			now := limiterT0
			for range tt.failures {
				l.RecordFailure(client, addr, now)
			}
			ok, wait := l.Allow(client, addr, now)
			if ok != (tt.wantWait == 0) || wait != tt.wantWait {
				t.Fatalf("Allow() = %v, %v; want wait %v", ok, wait, tt.wantWait)
			}
			if ok, _ := l.Allow(client, "192.0.2.11", now); !ok {
				t.Fatal("same client from another address refused")
			}
			if ok, _ := l.Allow("ecd_stg_ffffffffffffffffffff", addr, now); !ok {
				t.Fatal("another client from the same address refused below the address threshold")
			}
			if ok, _ := l.Allow(client, addr, now.Add(tt.wantWait)); !ok {
				t.Fatalf("still refused after the wait of %v", tt.wantWait)
			}
		})
	}

	t.Run("success clears the pair", func(t *testing.T) {
		l := newTestLimiter(t, cfg)
		for range 2 {
			l.RecordFailure(client, addr, limiterT0)
		}
		l.RecordSuccess(client, addr, limiterT0)
		l.RecordFailure(client, addr, limiterT0)
		if ok, _ := l.Allow(client, addr, limiterT0); !ok {
			t.Fatal("refused after success reset the count")
		}
	})
	t.Run("failures expire after the window", func(t *testing.T) {
		l := newTestLimiter(t, cfg)
		now := limiterT0
		for range 10 {
			l.RecordFailure(client, addr, now)
			now = now.Add(cfg.FailureWindow + time.Second)
		}
		if ok, wait := l.Allow(client, addr, now); !ok {
			t.Fatalf("refused (%v) though no two failures were within the window", wait)
		}
	})
}

func TestAddressSlowdown(t *testing.T) {
	l := newTestLimiter(t, LimiterConfig{
		AddrRate: rate.Inf, AddrBurst: 1, PairFailureThreshold: 1000, AddrFailureThreshold: 10,
		BaseDelay: 2 * time.Second, MaxDelay: time.Minute,
	})
	const sprayer = "203.0.113.5"
	now := limiterT0
	// Password spraying: one address, a different client each time.
	for i := range 9 {
		l.RecordFailure(fmt.Sprintf("ecd_prd_%020d", i), sprayer, now)
	}
	if ok, _ := l.Allow("ecd_prd_new", sprayer, now); !ok {
		t.Fatal("refused below the address threshold")
	}
	l.RecordFailure("ecd_prd_9", sprayer, now)
	if ok, wait := l.Allow("ecd_prd_new", sprayer, now); ok || wait != 2*time.Second {
		t.Fatalf("Allow() = %v, %v; want refused for 2s", ok, wait)
	}
	if ok, _ := l.Allow("", sprayer, now); ok {
		t.Fatal("request without client_id from a slowed address allowed")
	}
	// A success with a valid credential does not clear the address.
	l.RecordSuccess("ecd_prd_valid", sprayer, now)
	if ok, _ := l.Allow("ecd_prd_valid", sprayer, now); ok {
		t.Fatal("success cleared the address slowdown")
	}
	for i := range 10 {
		if ok, _ := l.Allow(fmt.Sprintf("ecd_prd_%020d", i), "198.51.100.1", now); !ok {
			t.Fatalf("client %d from another address refused", i)
		}
	}
}

func TestAddressBucket(t *testing.T) {
	tests := []struct {
		name      string
		first     string
		second    string
		wantShare bool
	}{
		{"same IPv4, different ports", "192.0.2.1:1000", "192.0.2.1:2000", true},
		{"different IPv4", "192.0.2.1", "192.0.2.2", false},
		{"IPv4-mapped IPv6 is IPv4", "192.0.2.1", "[::ffff:192.0.2.1]:443", true},
		{"same IPv6 /64", "[2001:db8:1:2::1]:443", "2001:db8:1:2:ffff::9", true},
		{"different IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"IPv6 zone ignored", "fe80::1%eth0", "fe80::2", true},
		{"unparsable kept apart", "not-an-ip", "also-not", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLimiter(t, LimiterConfig{AddrRate: 1, AddrBurst: 2})
			for i := range 2 {
				if ok, _ := l.Allow("", tt.first, limiterT0); !ok {
					t.Fatalf("request %d within the burst refused", i)
				}
			}
			if ok, wait := l.Allow("", tt.first, limiterT0); ok || wait != time.Second {
				t.Fatalf("third request: %v, %v; want refused for 1s", ok, wait)
			}
			ok, _ := l.Allow("", tt.second, limiterT0)
			if ok == tt.wantShare {
				t.Fatalf("second address allowed = %v, want shared bucket = %v", ok, tt.wantShare)
			}
		})
	}
}

func TestRefusedRequestsDoNotSpendTokens(t *testing.T) {
	l := newTestLimiter(t, LimiterConfig{AddrRate: 1, AddrBurst: 1})
	if ok, _ := l.Allow("", "192.0.2.1", limiterT0); !ok {
		t.Fatal("first request refused")
	}
	// Hammering while refused does not push the next token further away.
	for range 100 {
		l.Allow("", "192.0.2.1", limiterT0.Add(500*time.Millisecond))
	}
	if ok, wait := l.Allow("", "192.0.2.1", limiterT0.Add(time.Second)); !ok {
		t.Fatalf("refused (%v) a second later", wait)
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	l := newTestLimiter(t, LimiterConfig{MaxKeys: 100, IdleTTL: time.Minute, FailureWindow: 5 * time.Minute, MaxDelay: time.Minute})
	now := limiterT0
	for i := range 10000 {
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		client := fmt.Sprintf("ecd_stg_%020d", i)
		l.Allow(client, addr, now)
		l.RecordFailure(client, addr, now)
		l.RecordSuccess(client+"x", addr, now)
		if s := l.Stats(); s.Clients > 100 || s.Addrs > 100 || s.PairFailures > 100 || s.AddrFailures > 100 {
			t.Fatalf("after %d keys: %+v exceeds 100 per table", i+1, s)
		}
	}
	if s := l.Stats(); s.Clients != 100 || s.Addrs != 100 || s.PairFailures != 100 || s.AddrFailures != 100 {
		t.Fatalf("Stats() = %+v, want 100 in each table", s)
	}
	// Idle entries go: buckets after IdleTTL, failure counts after the window.
	l.Allow("", "192.0.2.1", now.Add(2*time.Minute))
	if s := l.Stats(); s.Addrs != 1 || s.Clients != 0 || s.PairFailures != 100 || s.AddrFailures != 100 {
		t.Fatalf("after IdleTTL: %+v; want idle buckets gone, failure counts kept", s)
	}
	l.Allow("", "192.0.2.1", now.Add(6*time.Minute))
	if s := l.Stats(); s.Addrs != 1 || s.PairFailures != 0 || s.AddrFailures != 0 {
		t.Fatalf("after the failure window: %+v; want only the fresh bucket", s)
	}
}

func TestLimiterKeepsRecentlyUsedEntries(t *testing.T) {
	l := newTestLimiter(t, LimiterConfig{MaxKeys: 3, AddrRate: 1, AddrBurst: 1})
	now := limiterT0
	if ok, _ := l.Allow("", "192.0.2.1", now); !ok {
		t.Fatal("first request refused")
	}
	for i := 2; i <= 10; i++ {
		l.Allow("", fmt.Sprintf("192.0.2.%d", i), now)
		// Touch the first address so it stays most recently used.
		if ok, _ := l.Allow("", "192.0.2.1", now); ok {
			t.Fatalf("round %d: the first address lost its empty bucket", i)
		}
	}
}

func TestNewLimiterConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     LimiterConfig
		wantErr bool
	}{
		{"defaults", LimiterConfig{}, false},
		{"negative rate", LimiterConfig{ClientRate: -1}, true},
		{"negative burst", LimiterConfig{AddrBurst: -1}, true},
		{"negative threshold", LimiterConfig{PairFailureThreshold: -1}, true},
		{"base above max", LimiterConfig{BaseDelay: time.Hour, MaxDelay: time.Minute}, true},
		{"negative max keys", LimiterConfig{MaxKeys: -5}, true},
		{"IPv6 prefix too long", LimiterConfig{IPv6PrefixBits: 129}, true},
		{"unlimited rates", LimiterConfig{ClientRate: rate.Inf, AddrRate: rate.Inf}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewLimiter(tt.cfg); (err != nil) != tt.wantErr {
				t.Fatalf("NewLimiter() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		base, max time.Duration
		n         int
		want      time.Duration
	}{
		{time.Second, time.Minute, 0, time.Second},
		{time.Second, time.Minute, 5, 32 * time.Second},
		{time.Second, time.Minute, 6, time.Minute},
		{time.Second, time.Minute, 40, time.Minute},
		{time.Second, time.Minute, 1000, time.Minute},
		{time.Hour, 1000 * time.Hour, 40, 1000 * time.Hour},
		{0, time.Minute, 3, 0},
	}
	for _, tt := range tests {
		if got := backoff(tt.base, tt.max, tt.n); got != tt.want {
			t.Errorf("backoff(%v, %v, %d) = %v, want %v", tt.base, tt.max, tt.n, got, tt.want)
		}
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := newTestLimiter(t, LimiterConfig{MaxKeys: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				client := fmt.Sprintf("ecd_stg_%020d", i%70)
				addr := fmt.Sprintf("192.0.2.%d", (g*31+i)%90)
				now := limiterT0.Add(time.Duration(i) * time.Millisecond)
				if ok, _ := l.Allow(client, addr, now); ok {
					if i%3 == 0 {
						l.RecordSuccess(client, addr, now)
					} else {
						l.RecordFailure(client, addr, now)
					}
				}
			}
		})
	}
	wg.Wait()
	if s := l.Stats(); s.Clients > 50 || s.Addrs > 50 || s.PairFailures > 50 || s.AddrFailures > 50 {
		t.Fatalf("Stats() = %+v exceeds 50 per table", s)
	}
}
