package oauth

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func newReusingIssuer(t *testing.T, clock *testClock, reuse time.Duration) *Issuer {
	t.Helper()
	iss, err := NewIssuer(IssuerConfig{Issuer: testIssuerURL, Audience: testAudience, Clock: clock.Now, Reuse: reuse})
	if err != nil {
		t.Fatal(err)
	}
	key, err := GenerateSigningKey(clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.SetKeys(key, nil); err != nil {
		t.Fatal(err)
	}
	return iss
}

func TestReuseWithinWindowOnly(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	iss := newReusingIssuer(t, clock, time.Minute)
	c := Claims{ClientID: "ecd_stg_aaaaaaaaaaaaaaaaaaaa", Agency: "demo-county", Environment: EnvStaging}

	first, exp1, jti1, reused, err := iss.IssueReusable("7/1", c)
	if err != nil || reused || exp1 != int(DefaultLifetime/time.Second) {
		t.Fatalf("first: reused=%v expires_in=%d err=%v", reused, exp1, err)
	}
	clock.Set(clock.Now().Add(59*time.Second + 500*time.Millisecond))
	again, exp2, jti2, reused, err := iss.IssueReusable("7/1", c)
	if err != nil || !reused || again != first || jti2 != jti1 {
		t.Fatalf("within the window: reused=%v same=%v err=%v", reused, again == first, err)
	}
	// The token states exp = issuance + 15 min: 840.5 s are left, answered as 840.
	if exp2 != int(DefaultLifetime/time.Second)-60 {
		t.Fatalf("expires_in of the reused token = %d, want %d", exp2, int(DefaultLifetime/time.Second)-60)
	}
	claims, err := iss.Verify(again)
	if err != nil {
		t.Fatal(err)
	}
	if left := claims.ExpiresAt.Sub(clock.Now()); left < time.Duration(exp2)*time.Second || left >= time.Duration(exp2+1)*time.Second {
		t.Fatalf("expires_in %d does not match exp (%s left)", exp2, left)
	}

	clock.Set(clock.Now().Add(time.Second))
	fresh, exp3, jti3, reused, err := iss.IssueReusable("7/1", c)
	if err != nil || reused || fresh == first || jti3 == jti1 || exp3 != int(DefaultLifetime/time.Second) {
		t.Fatalf("after the window: reused=%v same=%v expires_in=%d err=%v", reused, fresh == first, exp3, err)
	}
}

func TestReuseNeverCrossesKeysClaimsOrSigningKeys(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	iss := newReusingIssuer(t, clock, time.Minute)
	c := Claims{ClientID: "ecd_stg_aaaaaaaaaaaaaaaaaaaa", Agency: "demo-county", Environment: EnvStaging}
	first, _, _, _, err := iss.IssueReusable("7/1", c)
	if err != nil {
		t.Fatal(err)
	}
	// A regenerated secret is a new reuse key: a new token.
	if tok, _, _, reused, _ := iss.IssueReusable("7/2", c); reused || tok == first {
		t.Fatal("a new secret version got the token issued to the old one")
	}
	// Other claims under the same key: a new token that states them.
	other := c
	other.Agency = "renamed-county"
	tok, _, _, reused, err := iss.IssueReusable("7/1", other)
	if err != nil || reused || tok == first {
		t.Fatal("changed claims got the old token")
	}
	if got, err := iss.Verify(tok); err != nil || got.Agency != "renamed-county" {
		t.Fatalf("token after a claim change states %+v, %v", got, err)
	}
	// After a rotation the active key signs: no token of the retired key
	// is handed out again.
	before, _, _, _, _ := iss.IssueReusable("9/1", c)
	if _, _, err := iss.Rotate(clock.Now()); err != nil {
		t.Fatal(err)
	}
	after, _, _, reused, err := iss.IssueReusable("9/1", c)
	if err != nil || reused || after == before {
		t.Fatal("a token signed by the retired key was reused after rotation")
	}
	if headerKID(t, after) == headerKID(t, before) {
		t.Fatal("the new token is not signed by the new key")
	}
	// An empty key, or reuse turned off, always signs.
	if a, _, _, _, _ := iss.IssueReusable("", c); a == "" {
		t.Fatal("no token")
	} else if b, _, _, reused, _ := iss.IssueReusable("", c); reused || a == b {
		t.Fatal("an empty reuse key reused a token")
	}
	off := newReusingIssuer(t, clock, 0)
	a, _, _, _, _ := off.IssueReusable("7/1", c)
	if b, _, _, reused, _ := off.IssueReusable("7/1", c); reused || a == b {
		t.Fatal("reuse 0 reused a token")
	}
	// Forget drops a kept token.
	kept, _, _, _, _ := iss.IssueReusable("11/1", c)
	iss.Forget("11/1")
	if tok, _, _, reused, _ := iss.IssueReusable("11/1", c); reused || tok == kept {
		t.Fatal("a forgotten token was reused")
	}
}

func TestReuseStoreIsBounded(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	iss := newReusingIssuer(t, clock, time.Minute)
	iss.maxReused = 8
	c := Claims{ClientID: "ecd_stg_aaaaaaaaaaaaaaaaaaaa", Environment: EnvStaging}
	for i := range 20 {
		if _, _, _, _, err := iss.IssueReusable(strconv.Itoa(i), c); err != nil {
			t.Fatal(err)
		}
		if n := len(iss.reused); n > 8 {
			t.Fatalf("%d tokens kept, the bound is 8", n)
		}
	}
	// Full of tokens still in their window: new ones are not kept.
	if _, _, _, reused, _ := iss.IssueReusable("19", c); reused {
		t.Fatal("a token beyond the bound was kept")
	}
	// Once the window has passed, the sweep makes room again.
	clock.Set(clock.Now().Add(2 * time.Minute))
	if _, _, _, _, err := iss.IssueReusable("new", c); err != nil {
		t.Fatal(err)
	}
	if n := len(iss.reused); n != 1 {
		t.Fatalf("%d tokens kept after the sweep, want 1", n)
	}
	if _, _, _, reused, _ := iss.IssueReusable("new", c); !reused {
		t.Fatal("the token kept after the sweep is not reused")
	}
}

func TestNewIssuerRefusesLongReuse(t *testing.T) {
	for _, reuse := range []time.Duration{-time.Second, DefaultLifetime/10 + time.Second} {
		if _, err := NewIssuer(IssuerConfig{Issuer: testIssuerURL, Audience: testAudience, Reuse: reuse}); err == nil {
			t.Fatalf("Reuse %s accepted", reuse)
		}
	}
	if _, err := NewIssuer(IssuerConfig{Issuer: testIssuerURL, Audience: testAudience, Reuse: DefaultLifetime / 10}); err != nil {
		t.Fatal(err)
	}
}

func TestIssuerNeverPrintsKeptTokensOrKeys(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	iss := newReusingIssuer(t, clock, time.Minute)
	tok, _, _, _, err := iss.IssueReusable("7/1", Claims{ClientID: "ecd_stg_aaaaaaaaaaaaaaaaaaaa", Environment: EnvStaging})
	if err != nil {
		t.Fatal(err)
	}
	active, _ := iss.Keys()
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	holder := struct{ I *Issuer }{iss}
	for _, v := range []any{iss, holder, &holder} {
		out := sprintAll(v) + slogAll(t, v)
		if strings.Contains(out, sig) || strings.Contains(out, active.Private.D.Text(16)) || strings.Contains(out, active.Private.D.String()) {
			t.Fatalf("output shows a kept token or the private key: %s", out)
		}
	}
	if out := iss.String(); !strings.Contains(out, active.KID) || !strings.Contains(out, testIssuerURL) {
		t.Fatalf("description lacks the issuer or kid: %s", out)
	}
}
