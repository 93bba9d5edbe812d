package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuerURL = "https://keyconsole.example.gov"
	testAudience  = "https://api.courtdates.example.gov"
)

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func newTestIssuer(t testing.TB, clock *testClock) *Issuer {
	t.Helper()
	iss, err := NewIssuer(IssuerConfig{Issuer: testIssuerURL, Audience: testAudience, Clock: clock.Now})
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

// keysFromJWKS parses a JWKS document into public keys by kid, as a
// resource server would, checking each member.
func keysFromJWKS(t *testing.T, doc []byte) map[string]*ecdsa.PublicKey {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v: %s", err, doc)
	}
	keys := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		if k["kty"] != "EC" || k["crv"] != "P-256" || k["use"] != "sig" || k["alg"] != "ES256" {
			t.Fatalf("JWK members = %v, want kty EC, crv P-256, use sig, alg ES256", k)
		}
		for _, private := range []string{"d", "p", "q"} {
			if _, ok := k[private]; ok {
				t.Fatalf("JWK has private member %q", private)
			}
		}
		x, errX := base64.RawURLEncoding.DecodeString(k["x"].(string))
		y, errY := base64.RawURLEncoding.DecodeString(k["y"].(string))
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			t.Fatalf("JWK coordinates are not 32-byte base64url: %v %v", errX, errY)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("JWK is not a P-256 point: %v", err)
		}
		kid := k["kid"].(string)
		// The kid is the RFC 7638 thumbprint, recomputed here independently:
		// encoding/json sorts map keys, which gives the canonical member order.
		canonical, err := json.Marshal(map[string]string{"crv": "P-256", "kty": "EC", "x": k["x"].(string), "y": k["y"].(string)})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(canonical)
		if want := base64.RawURLEncoding.EncodeToString(sum[:]); kid != want {
			t.Fatalf("kid = %s, want thumbprint %s", kid, want)
		}
		if _, dup := keys[kid]; dup {
			t.Fatalf("kid %s published twice", kid)
		}
		keys[kid] = pub
	}
	return keys
}

// resourceServerParse verifies a token the way an independent resource
// server would, using only the JWKS document and jwt/v5.
func resourceServerParse(t *testing.T, token string, jwks []byte, now time.Time) (jwt.MapClaims, *jwt.Token, error) {
	t.Helper()
	keys := keysFromJWKS(t, jwks)
	claims := jwt.MapClaims{}
	parsed, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(testIssuerURL),
		jwt.WithAudience(testAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	).ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		if tok.Header["typ"] != "at+jwt" {
			return nil, fmt.Errorf("typ = %v", tok.Header["typ"])
		}
		kid, _ := tok.Header["kid"].(string)
		if pub, ok := keys[kid]; ok {
			return pub, nil
		}
		return nil, fmt.Errorf("kid %q not in JWKS", kid)
	})
	return claims, parsed, err
}

func TestIssueVerifiedByResourceServer(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &testClock{now: now}
	iss := newTestIssuer(t, clock)
	active, _ := iss.Keys()

	tests := []struct {
		name      string
		claims    Claims
		wantSub   string
		wantScope any
	}{
		{
			name:    "with scope",
			claims:  Claims{ClientID: testID, Agency: "cook-county", Environment: EnvStaging, Scope: "notifications:read cases:write"},
			wantSub: testID, wantScope: "notifications:read cases:write",
		},
		{
			name:    "without scope",
			claims:  Claims{ClientID: testID, Agency: "cook-county", Environment: EnvProduction},
			wantSub: testID, wantScope: nil,
		},
		{
			name:    "explicit subject",
			claims:  Claims{Subject: "client-42", ClientID: testID, Agency: "a", Environment: EnvStaging},
			wantSub: "client-42", wantScope: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, expiresIn, jti, err := iss.Issue(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			if expiresIn != 900 {
				t.Fatalf("expiresIn = %d, want 900", expiresIn)
			}
			claims, parsed, err := resourceServerParse(t, token, iss.JWKS(), now.Add(time.Minute))
			if err != nil {
				t.Fatalf("resource server rejects the token: %v", err)
			}
			if parsed.Header["alg"] != "ES256" || parsed.Header["typ"] != "at+jwt" || parsed.Header["kid"] != active.KID {
				t.Fatalf("header = %v, want ES256, at+jwt, kid %s", parsed.Header, active.KID)
			}
			want := map[string]any{
				"iss":         testIssuerURL,
				"sub":         tt.wantSub,
				"client_id":   testID,
				"agency":      tt.claims.Agency,
				"environment": tt.claims.Environment,
				"jti":         jti,
				"iat":         float64(now.Unix()),
				"nbf":         float64(now.Unix()),
				"exp":         float64(now.Add(15 * time.Minute).Unix()),
			}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, claims[k], v)
				}
			}
			if got, ok := claims["scope"]; ok != (tt.wantScope != nil) || got != tt.wantScope {
				t.Errorf("scope = %v (present %v), want %v", got, ok, tt.wantScope)
			}
			aud, err := claims.GetAudience()
			if err != nil || len(aud) != 1 || aud[0] != testAudience {
				t.Errorf("aud = %v, %v; want [%s]", aud, err, testAudience)
			}
			if len(jti) < 22 {
				t.Errorf("jti %q is too short for 128 bits", jti)
			}
			own, err := iss.Verify(token)
			if err != nil || own.ClientID != testID || own.Agency != tt.claims.Agency || own.Scope != tt.claims.Scope {
				t.Fatalf("Issuer.Verify() = %+v, %v", own, err)
			}
		})
	}
}

func TestIssuedTokensAreRejectedWhenWrong(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &testClock{now: now}
	iss := newTestIssuer(t, clock)
	token, _, _, err := iss.Issue(Claims{ClientID: testID, Agency: "a", Environment: EnvStaging})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	otherAud, err := NewIssuer(IssuerConfig{Issuer: testIssuerURL, Audience: "https://other.example", Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	active, _ := iss.Keys()
	if err := otherAud.SetKeys(active, nil); err != nil {
		t.Fatal(err)
	}
	otherAudToken, _, _, err := otherAud.Issue(Claims{ClientID: testID})
	if err != nil {
		t.Fatal(err)
	}
	foreign := newTestIssuer(t, clock)
	foreignToken, _, _, err := foreign.Issue(Claims{ClientID: testID})
	if err != nil {
		t.Fatal(err)
	}
	// A token with the right key and claims but typ JWT, as an ID token would be.
	plain := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": testIssuerURL, "aud": testAudience, "sub": testID, "client_id": testID,
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(),
	})
	plain.Header["kid"] = active.KID
	plainToken, err := plain.SignedString(active.Private)
	if err != nil {
		t.Fatal(err)
	}
	tamperedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + testIssuerURL + `","aud":"` + testAudience + `","sub":"x","client_id":"x","exp":9999999999}`))

	tests := []struct {
		name  string
		token string
		at    time.Time
	}{
		{"expired", token, now.Add(15*time.Minute + time.Second)},
		{"not yet valid", token, now.Add(-time.Hour)},
		{"wrong audience", otherAudToken, now},
		{"unknown key", foreignToken, now},
		{"typ JWT", plainToken, now},
		{"tampered payload", parts[0] + "." + tamperedPayload + "." + parts[2], now},
		{"bad signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)), now},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".", now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := resourceServerParse(t, tt.token, iss.JWKS(), tt.at); err == nil {
				t.Fatal("resource server accepted the token")
			}
			clock.Set(tt.at)
			defer clock.Set(now)
			// Issuer.Verify allows ClockSkew, so move past it for time cases.
			if tt.name == "expired" {
				clock.Set(tt.at.Add(iss.ClockSkew()))
			}
			if tt.name == "not yet valid" {
				clock.Set(tt.at.Add(-iss.ClockSkew()))
			}
			if _, err := iss.Verify(tt.token); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Issuer.Verify() error = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestRotationKeepsOldKeyPublishedUntilExpiry(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &testClock{now: t0}
	iss := newTestIssuer(t, clock)
	oldKey, _ := iss.Keys()

	// A token signed by the old key just before rotation.
	clock.Set(t0.Add(time.Hour))
	oldToken, _, _, err := iss.Issue(Claims{ClientID: testID})
	if err != nil {
		t.Fatal(err)
	}
	rotatedAt := t0.Add(time.Hour)
	newKey, published, err := iss.Rotate(rotatedAt)
	if err != nil {
		t.Fatal(err)
	}
	if newKey.KID == oldKey.KID || len(published) != 2 || published[0].KID != newKey.KID || published[1].KID != oldKey.KID {
		t.Fatalf("Rotate() = %s, %v; want new key first, then the old one", newKey.KID, published)
	}
	wantUntil := rotatedAt.Add(15*time.Minute + time.Minute)
	if !published[1].NotAfter.Equal(rotatedAt) || !published[1].PublishUntil.Equal(wantUntil) {
		t.Fatalf("retired key NotAfter %v PublishUntil %v; want %v and %v", published[1].NotAfter, published[1].PublishUntil, rotatedAt, wantUntil)
	}
	newToken, _, _, err := iss.Issue(Claims{ClientID: testID})
	if err != nil {
		t.Fatal(err)
	}
	if kid := headerKID(t, newToken); kid != newKey.KID {
		t.Fatalf("token after rotation signed by %s, want %s", kid, newKey.KID)
	}

	tests := []struct {
		name        string
		at          time.Time
		wantOldKey  bool
		oldTokenOK  bool
		wantNumKeys int
	}{
		{"right after rotation", rotatedAt, true, true, 2},
		{"just before the old token expires", rotatedAt.Add(15*time.Minute - time.Second), true, true, 2},
		{"after expiry, within skew", rotatedAt.Add(15*time.Minute + 30*time.Second), true, false, 2},
		{"at PublishUntil", wantUntil, false, false, 1},
		{"a day later", rotatedAt.Add(24 * time.Hour), false, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Set(tt.at)
			jwks := iss.JWKS()
			keys := keysFromJWKS(t, jwks)
			if _, ok := keys[oldKey.KID]; ok != tt.wantOldKey {
				t.Fatalf("old key published = %v, want %v", ok, tt.wantOldKey)
			}
			if _, ok := keys[newKey.KID]; !ok || len(keys) != tt.wantNumKeys {
				t.Fatalf("JWKS has %d keys (new key present %v), want %d with the new key", len(keys), ok, tt.wantNumKeys)
			}
			_, _, err := resourceServerParse(t, oldToken, jwks, tt.at)
			if (err == nil) != tt.oldTokenOK {
				t.Fatalf("old token verifies = %v (%v), want %v", err == nil, err, tt.oldTokenOK)
			}
		})
	}

	// The retired key never signs again, even if installed as active.
	clock.Set(rotatedAt.Add(time.Minute))
	if err := iss.SetKeys(published[1], published); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := iss.Issue(Claims{ClientID: testID}); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Issue() with a retired key: error = %v, want ErrNoSigningKey", err)
	}

	// A second rotation after PublishUntil drops the first key.
	clock.Set(wantUntil.Add(time.Hour))
	if err := iss.SetKeys(newKey, published); err != nil {
		t.Fatal(err)
	}
	third, published2, err := iss.Rotate(clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(published2) != 2 || published2[0].KID != third.KID || published2[1].KID != newKey.KID {
		t.Fatalf("second rotation kept %v, want the third and second keys only", published2)
	}
}

func headerKID(t *testing.T, token string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

func TestRetireAndPruneKeys(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := SigningKey{KID: "k"}
	tests := []struct {
		name             string
		in               SigningKey
		wantNotAfter     time.Time
		wantPublishUntil time.Time
	}{
		{"fresh key", k, now, now.Add(16 * time.Minute)},
		{"earlier NotAfter kept", SigningKey{KID: "k", NotAfter: now.Add(-time.Hour)}, now.Add(-time.Hour), now.Add(-time.Hour + 16*time.Minute)},
		{"later NotAfter cut to now", SigningKey{KID: "k", NotAfter: now.Add(time.Hour)}, now, now.Add(16 * time.Minute)},
		{"later PublishUntil kept", SigningKey{KID: "k", PublishUntil: now.Add(48 * time.Hour)}, now, now.Add(48 * time.Hour)},
		{"too early PublishUntil extended", SigningKey{KID: "k", PublishUntil: now.Add(time.Minute)}, now, now.Add(16 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RetireKey(tt.in, now, 15*time.Minute, time.Minute)
			if !got.NotAfter.Equal(tt.wantNotAfter) || !got.PublishUntil.Equal(tt.wantPublishUntil) {
				t.Fatalf("RetireKey() = %v / %v, want %v / %v", got.NotAfter, got.PublishUntil, tt.wantNotAfter, tt.wantPublishUntil)
			}
		})
	}
	keys := []SigningKey{
		{KID: "forever"},
		{KID: "gone", PublishUntil: now},
		{KID: "later", PublishUntil: now.Add(time.Second)},
		{KID: "old", PublishUntil: now.Add(-time.Hour)},
	}
	got := PruneKeys(keys, now)
	if len(got) != 2 || got[0].KID != "forever" || got[1].KID != "later" {
		t.Fatalf("PruneKeys() = %v, want forever and later", got)
	}
}

func TestSigningKeyMarshalRoundTrip(t *testing.T) {
	created := time.Date(2026, 2, 2, 2, 2, 2, 0, time.UTC)
	k, err := GenerateSigningKey(created)
	if err != nil {
		t.Fatal(err)
	}
	if !k.CreatedAt.Equal(created) || k.Private.Curve != elliptic.P256() {
		t.Fatalf("GenerateSigningKey() CreatedAt %v curve %v", k.CreatedAt, k.Private.Curve.Params().Name)
	}
	der, err := k.MarshalPrivate()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalPrivate(der)
	if err != nil {
		t.Fatal(err)
	}
	if back.KID != k.KID || !back.Private.Equal(k.Private) {
		t.Fatalf("round trip changed the key: %s vs %s", back.KID, k.KID)
	}

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, err := SigningKey{Private: p384}.MarshalPrivate()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		der  []byte
	}{
		{"garbage", []byte("not a key")},
		{"empty", nil},
		{"P-384 key", p384DER},
		{"truncated", der[:len(der)/2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := UnmarshalPrivate(tt.der); err == nil {
				t.Fatal("UnmarshalPrivate() accepted it")
			}
		})
	}
	if _, err := (SigningKey{}).MarshalPrivate(); !errors.Is(err, ErrInvalidSigningKey) {
		t.Fatalf("MarshalPrivate() of an empty key: %v", err)
	}
}

func TestSetKeysValidation(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	iss, err := NewIssuer(IssuerConfig{Issuer: testIssuerURL, Audience: testAudience, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := iss.Issue(Claims{ClientID: testID}); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Issue() without keys: %v, want ErrNoSigningKey", err)
	}
	if got := string(iss.JWKS()); got != `{"keys":[]}` {
		t.Fatalf("JWKS() without keys = %s", got)
	}
	good, err := GenerateSigningKey(clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateSigningKey(clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	wrongKID := good
	wrongKID.KID = other.KID
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		active    SigningKey
		published []SigningKey
		wantErr   bool
	}{
		{"valid", good, []SigningKey{other}, false},
		{"duplicate published", good, []SigningKey{good, other, other}, false},
		{"no active key", SigningKey{}, nil, true},
		{"wrong kid", wrongKID, nil, true},
		{"P-384 key", SigningKey{KID: "x", Private: p384}, nil, true},
		{"bad published key", good, []SigningKey{{KID: "x"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := iss.SetKeys(tt.active, tt.published)
			if (err != nil) != tt.wantErr {
				t.Fatalf("SetKeys() error = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr {
				active, all := iss.Keys()
				if active.KID != good.KID || len(all) != 2 {
					t.Fatalf("Keys() = %s, %d keys; want %s and 2", active.KID, len(all), good.KID)
				}
			}
		})
	}
}

func TestNewIssuerConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     IssuerConfig
		wantErr bool
		wantLT  time.Duration
	}{
		{"defaults", IssuerConfig{Issuer: testIssuerURL, Audience: testAudience}, false, 15 * time.Minute},
		{"custom lifetime", IssuerConfig{Issuer: testIssuerURL, Audience: testAudience, Lifetime: 5 * time.Minute}, false, 5 * time.Minute},
		{"no issuer", IssuerConfig{Audience: testAudience}, true, 0},
		{"issuer with query", IssuerConfig{Issuer: testIssuerURL + "?x=1", Audience: testAudience}, true, 0},
		{"no audience", IssuerConfig{Issuer: testIssuerURL}, true, 0},
		{"negative lifetime", IssuerConfig{Issuer: testIssuerURL, Audience: testAudience, Lifetime: -time.Minute}, true, 0},
		{"lifetime too long", IssuerConfig{Issuer: testIssuerURL, Audience: testAudience, Lifetime: 25 * time.Hour}, true, 0},
		{"skew too large", IssuerConfig{Issuer: testIssuerURL, Audience: testAudience, ClockSkew: time.Hour}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, err := NewIssuer(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewIssuer() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && iss.Lifetime() != tt.wantLT {
				t.Fatalf("Lifetime() = %v, want %v", iss.Lifetime(), tt.wantLT)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	iss, err := NewIssuer(IssuerConfig{Issuer: testIssuerURL, Audience: testAudience})
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"https://console.example.gov", "https://console.example.gov/"} {
		var got map[string]any
		if err := json.Unmarshal(iss.Metadata(base), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"issuer":                                testIssuerURL,
			"token_endpoint":                        "https://console.example.gov/oauth/token",
			"jwks_uri":                              "https://console.example.gov/.well-known/jwks.json",
			"grant_types_supported":                 []any{"client_credentials"},
			"token_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post"},
			"response_types_supported":              []any{},
		}
		if len(got) != len(want) {
			t.Fatalf("Metadata(%q) = %v, want %v", base, got, want)
		}
		for k, v := range want {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Fatalf("Metadata(%q)[%s] = %v, want %v", base, k, got[k], v)
			}
		}
	}
}

func TestSigningKeyRedaction(t *testing.T) {
	k, err := GenerateSigningKey(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	d := k.Private.D.String()
	dHex := fmt.Sprintf("%x", k.Private.D.Bytes())
	holder := struct {
		Key  SigningKey
		Keys []SigningKey
		Ptr  *SigningKey
	}{k, []SigningKey{k}, &k}
	for _, v := range []any{k, &k, holder, &holder} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out := sprintAll(v) + slogAll(t, v) + string(j)
		if strings.Contains(out, d) || strings.Contains(out, dHex) || strings.Contains(out, new(big.Int).SetBytes(k.Private.D.Bytes()).Text(16)) {
			t.Fatalf("output shows the private key: %s", out)
		}
		if !strings.Contains(out, k.KID) {
			t.Fatalf("output lacks the kid: %s", out)
		}
	}
}

func TestIssueConcurrentWithRotation(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	iss := newTestIssuer(t, clock)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 4 {
		wg.Go(func() {
			for range 25 {
				token, _, _, err := iss.Issue(Claims{ClientID: testID})
				if err == nil {
					_, err = iss.Verify(token)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, _, err := iss.Rotate(clock.Now()); err != nil {
				errs <- err
			}
			_ = iss.JWKS()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func BenchmarkIssue(b *testing.B) {
	clock := &testClock{now: time.Now()}
	iss := newTestIssuer(b, clock)
	c := Claims{ClientID: testID, Agency: "cook-county", Environment: EnvProduction, Scope: "notifications:read"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := iss.Issue(c); err != nil {
			b.Fatal(err)
		}
	}
}
