package oauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	formCT     = "application/x-www-form-urlencoded"
	testID     = "ecd_stg_abcdefghijklmnopqrst"
	testSecret = "ecds_stg_0123456789abcdefghijABCDEFGHIJ-_xyzXYZ0"
)

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func basicRaw(raw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// allDescriptions is every error description ParseTokenRequest can return.
func allDescriptions() map[string]bool {
	m := map[string]bool{}
	for _, e := range []*Error{
		errMethod, errContentType, errBodyTooLarge, errBodyRead, errMalformedForm,
		errMissingGrant, errUnsupported, errBothMethods, errClientIDDiffers, errSecretNoID,
		errMalformedBasic, errOtherScheme, errNoClientAuth, errMalformedClient, errMalformedScope,
	} {
		m[e.Description] = true
	}
	for _, e := range repeatedErrors {
		m[e.Description] = true
	}
	return m
}

// validDescription reports whether s uses only the characters RFC 6749
// section 5.2 allows in error_description.
func validDescription(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

func TestParseTokenRequest(t *testing.T) {
	post := "grant_type=client_credentials&client_id=" + testID + "&client_secret=" + testSecret
	tests := []struct {
		name        string
		method      string
		contentType string
		auth        string
		body        io.Reader
		maxBody     int64
		want        TokenRequest
		wantCode    string
		wantStatus  int
		wantDesc    string
	}{
		{
			name: "client_secret_post", body: strings.NewReader(post + "&scope=read+write"),
			want: TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: NewClientSecret(testSecret), Scope: "read write", AuthMethod: AuthMethodPost},
		},
		{
			name: "client_secret_basic", auth: basic(testID, testSecret), body: strings.NewReader("grant_type=client_credentials"),
			want: TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: NewClientSecret(testSecret), AuthMethod: AuthMethodBasic},
		},
		{
			name: "basic with matching client_id in body", auth: basic(testID, testSecret),
			body: strings.NewReader("grant_type=client_credentials&client_id=" + testID),
			want: TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: NewClientSecret(testSecret), AuthMethod: AuthMethodBasic},
		},
		{
			name: "basic decodes form-urlencoded id and secret", auth: basic("client:1 +%", "s:e+c r%t"),
			body: strings.NewReader("grant_type=client_credentials"),
			want: TokenRequest{GrantType: "client_credentials", ClientID: "client:1 +%", ClientSecret: NewClientSecret("s:e+c r%t"), AuthMethod: AuthMethodBasic},
		},
		{
			name: "basic splits at the first colon", auth: basicRaw(testID + ":a:b"),
			body: strings.NewReader("grant_type=client_credentials"),
			want: TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: NewClientSecret("a:b"), AuthMethod: AuthMethodBasic},
		},
		{
			name: "basic scheme is case-insensitive and padding optional", auth: "basic   " + base64.RawStdEncoding.EncodeToString([]byte(testID+":ab")),
			body: strings.NewReader("grant_type=client_credentials"),
			want: TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: NewClientSecret("ab"), AuthMethod: AuthMethodBasic},
		},
		{
			name: "content type with charset and other case", contentType: "Application/X-WWW-Form-URLEncoded; charset=UTF-8", body: strings.NewReader(post),
			want: TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: NewClientSecret(testSecret), AuthMethod: AuthMethodPost},
		},
		{
			name: "unknown parameters are ignored even when repeated", body: strings.NewReader(post + "&resource=a&resource=b"),
			want: TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: NewClientSecret(testSecret), AuthMethod: AuthMethodPost},
		},
		{
			name: "scope whitespace normalised", body: strings.NewReader(post + "&scope=+a+++b+"),
			want: TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: NewClientSecret(testSecret), Scope: "a b", AuthMethod: AuthMethodPost},
		},
		{
			name: "empty scope counts as absent", body: strings.NewReader(post + "&scope="),
			want: TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: NewClientSecret(testSecret), AuthMethod: AuthMethodPost},
		},
		{
			name: "body exactly at the limit", maxBody: int64(len(post) + 10), body: strings.NewReader(post + "&pad=12345"),
			want: TokenRequest{GrantType: "client_credentials", ClientID: testID, ClientSecret: NewClientSecret(testSecret), AuthMethod: AuthMethodPost},
		},

		{name: "GET", method: http.MethodGet, body: strings.NewReader(post), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errMethod.Description},
		{name: "PUT", method: http.MethodPut, body: strings.NewReader(post), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errMethod.Description},
		{name: "JSON content type", contentType: "application/json", body: strings.NewReader(`{"grant_type":"client_credentials"}`), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errContentType.Description},
		{name: "no content type", contentType: "-", body: strings.NewReader(post), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errContentType.Description},
		{name: "multipart content type", contentType: "multipart/form-data; boundary=x", body: strings.NewReader(post), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errContentType.Description},
		{name: "malformed content type", contentType: "application/x-www-form-urlencoded; charset", body: strings.NewReader(post), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errContentType.Description},
		{name: "huge body", body: strings.NewReader(post + "&pad=" + strings.Repeat("A", 1<<20)), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errBodyTooLarge.Description},
		{name: "one byte over the limit", maxBody: int64(len(post) + 9), body: strings.NewReader(post + "&pad=12345"), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errBodyTooLarge.Description},
		{name: "MaxBytesReader limit", body: http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(post)), 10), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errBodyTooLarge.Description},
		{name: "body read error", body: failingReader{}, wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errBodyRead.Description},
		{name: "malformed form", body: strings.NewReader(post + "&x=%zz"), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errMalformedForm.Description},
		{name: "repeated grant_type", body: strings.NewReader(post + "&grant_type=client_credentials"), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: "parameter grant_type is repeated"},
		{name: "repeated client_id", body: strings.NewReader(post + "&client_id=" + testID), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: "parameter client_id is repeated"},
		{name: "repeated client_secret", body: strings.NewReader(post + "&client_secret=x"), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: "parameter client_secret is repeated"},
		{name: "repeated scope", body: strings.NewReader(post + "&scope=a&scope=b"), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: "parameter scope is repeated"},
		{name: "repeated empty grant_type", body: strings.NewReader(post + "&grant_type="), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: "parameter grant_type is repeated"},
		{name: "missing grant_type", body: strings.NewReader("client_id=" + testID + "&client_secret=" + testSecret), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errMissingGrant.Description},
		{name: "empty grant_type", body: strings.NewReader("grant_type=&client_id=" + testID + "&client_secret=" + testSecret), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errMissingGrant.Description},
		{name: "empty body", body: strings.NewReader(""), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errMissingGrant.Description},
		{name: "nil body", body: nil, wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errMissingGrant.Description},
		{name: "password grant", body: strings.NewReader("grant_type=password&username=a&password=b"), wantCode: ErrCodeUnsupportedGrantType, wantStatus: 400, wantDesc: errUnsupported.Description},
		{name: "authorization_code grant", auth: basic(testID, testSecret), body: strings.NewReader("grant_type=authorization_code&code=x"), wantCode: ErrCodeUnsupportedGrantType, wantStatus: 400, wantDesc: errUnsupported.Description},
		{name: "grant_type case matters", body: strings.NewReader("grant_type=Client_Credentials&client_id=a&client_secret=b"), wantCode: ErrCodeUnsupportedGrantType, wantStatus: 400, wantDesc: errUnsupported.Description},
		{name: "basic and client_secret in body", auth: basic(testID, testSecret), body: strings.NewReader(post), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: "use only one client authentication method"},
		{name: "body client_id differs from basic", auth: basic(testID, testSecret), body: strings.NewReader("grant_type=client_credentials&client_id=ecd_stg_other"), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errClientIDDiffers.Description},
		{name: "client_secret without client_id", body: strings.NewReader("grant_type=client_credentials&client_secret=" + testSecret), wantCode: ErrCodeInvalidRequest, wantStatus: 400, wantDesc: errSecretNoID.Description},
		{name: "no client authentication", body: strings.NewReader("grant_type=client_credentials"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errNoClientAuth.Description},
		{name: "client_id without secret", body: strings.NewReader("grant_type=client_credentials&client_id=" + testID), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errNoClientAuth.Description},
		{name: "empty client_secret in body", body: strings.NewReader("grant_type=client_credentials&client_id=" + testID + "&client_secret="), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errNoClientAuth.Description},
		{name: "control character in body client_id", body: strings.NewReader("grant_type=client_credentials&client_id=a%00b&client_secret=x"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedClient.Description},
		{name: "oversized body client_secret", body: strings.NewReader("grant_type=client_credentials&client_id=a&client_secret=" + strings.Repeat("s", 600)), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedClient.Description},
		{name: "invalid UTF-8 in body client_id", body: strings.NewReader("grant_type=client_credentials&client_id=%ff&client_secret=x"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedClient.Description},
		{name: "basic not base64", auth: "Basic !!!not-base64!!!", body: strings.NewReader("grant_type=client_credentials"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedBasic.Description},
		{name: "basic without colon", auth: basicRaw(testID + testSecret), body: strings.NewReader("grant_type=client_credentials"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedBasic.Description},
		{name: "basic with empty id", auth: basicRaw(":" + testSecret), body: strings.NewReader("grant_type=client_credentials"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedBasic.Description},
		{name: "basic with empty secret", auth: basicRaw(testID + ":"), body: strings.NewReader("grant_type=client_credentials"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedBasic.Description},
		{name: "basic with bad percent escape", auth: basicRaw(testID + ":ab%zz"), body: strings.NewReader("grant_type=client_credentials"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedBasic.Description},
		{name: "basic with control character", auth: basicRaw("a%0Ab:c"), body: strings.NewReader("grant_type=client_credentials"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedBasic.Description},
		{name: "basic without credentials", auth: "Basic", body: strings.NewReader("grant_type=client_credentials"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedBasic.Description},
		{name: "basic credentials too long", auth: basicRaw(testID + ":" + strings.Repeat("x", 3000)), body: strings.NewReader("grant_type=client_credentials"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errMalformedBasic.Description},
		{name: "bearer scheme", auth: "Bearer " + testSecret, body: strings.NewReader("grant_type=client_credentials"), wantCode: ErrCodeInvalidClient, wantStatus: 401, wantDesc: errOtherScheme.Description},
		{name: "malformed scope", body: strings.NewReader(post + "&scope=read+%22write%22"), wantCode: ErrCodeInvalidScope, wantStatus: 400, wantDesc: errMalformedScope.Description},
		{name: "blank scope", body: strings.NewReader(post + "&scope=+++"), wantCode: ErrCodeInvalidScope, wantStatus: 400, wantDesc: errMalformedScope.Description},
		{name: "non-ASCII scope", body: strings.NewReader(post + "&scope=r%C3%A9ad"), wantCode: ErrCodeInvalidScope, wantStatus: 400, wantDesc: errMalformedScope.Description},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			ct := tt.contentType
			switch ct {
			case "":
				ct = formCT
			case "-":
				ct = ""
			}
			got, err := ParseTokenRequest(method, ct, tt.auth, tt.body, tt.maxBody)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("ParseTokenRequest() error = %v, want success", err)
				}
				if got.GrantType != tt.want.GrantType || got.ClientID != tt.want.ClientID ||
					got.ClientSecret.Reveal() != tt.want.ClientSecret.Reveal() ||
					got.Scope != tt.want.Scope || got.AuthMethod != tt.want.AuthMethod {
					t.Fatalf("ParseTokenRequest() = %+v (secret %q), want %+v (secret %q)",
						got, got.ClientSecret.Reveal(), tt.want, tt.want.ClientSecret.Reveal())
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseTokenRequest() = %+v, want error %s", got, tt.wantCode)
			}
			if err.Code != tt.wantCode || err.Status != tt.wantStatus || err.Description != tt.wantDesc {
				t.Fatalf("error = {%s %q %d}, want {%s %q %d}", err.Code, err.Description, err.Status, tt.wantCode, tt.wantDesc, tt.wantStatus)
			}
			if wantChallenge := tt.wantCode == ErrCodeInvalidClient; err.WWWAuthenticate != wantChallenge {
				t.Fatalf("WWWAuthenticate = %v, want %v", err.WWWAuthenticate, wantChallenge)
			}
			if !reflect.DeepEqual(got, TokenRequest{}) {
				t.Fatalf("request on error = %+v, want zero", got)
			}
			if strings.Contains(err.Description, testSecret) || strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error mentions the secret: %q", err.Error())
			}
			if !validDescription(err.Description) {
				t.Fatalf("description %q has characters RFC 6749 does not allow", err.Description)
			}
		})
	}
}

func TestCheckQuery(t *testing.T) {
	tests := []struct {
		query   string
		wantErr bool
	}{
		{"", false},
		{"foo=bar", false},
		{"client_id=" + testID, false},
		{"client_secret=" + testSecret, true},
		{"a=1&client_secret=x", true},
		{"a=1;client_secret=x", true},
		{"client%5Fsecret=x", true},
		{"client_secret", true},
		{"%zz&client_secret=x", true},
		{"client_secret_hint=x", false},
	}
	for _, tt := range tests {
		err := CheckQuery(tt.query)
		if (err != nil) != tt.wantErr {
			t.Errorf("CheckQuery(%q) = %v, wantErr %v", tt.query, err, tt.wantErr)
			continue
		}
		if err != nil && (err.Code != ErrCodeInvalidRequest || err.Status != 400 || strings.Contains(err.Description, testSecret)) {
			t.Errorf("CheckQuery(%q) = %+v", tt.query, err)
		}
	}
}

// TestParseTokenRequestErrorsAreCopies checks that a caller changing a
// returned error does not change the next answer.
func TestParseTokenRequestErrorsAreCopies(t *testing.T) {
	_, e1 := ParseTokenRequest(http.MethodGet, formCT, "", nil, 0)
	e1.Description = "changed"
	_, e2 := ParseTokenRequest(http.MethodGet, formCT, "", nil, 0)
	if e2.Description != errMethod.Description {
		t.Fatalf("second error description = %q, want %q", e2.Description, errMethod.Description)
	}
}

func TestErrorBodyAndWrite(t *testing.T) {
	tests := []struct {
		name        string
		err         *Error
		wantStatus  int
		wantBody    string
		wantAuth    string
		wantRetryAt string
	}{
		{
			name: "invalid_client", err: InvalidClient(), wantStatus: 401,
			wantBody: `{"error":"invalid_client","error_description":"client authentication failed"}`,
			wantAuth: `Basic realm="keyconsole"`,
		},
		{
			name: "invalid_scope", err: NewError(ErrCodeInvalidScope, "scope not allowed for this client"), wantStatus: 400,
			wantBody: `{"error":"invalid_scope","error_description":"scope not allowed for this client"}`,
		},
		{
			name: "no description", err: NewError(ErrCodeInvalidGrant, ""), wantStatus: 400,
			wantBody: `{"error":"invalid_grant"}`,
		},
		{
			name: "rate limited", err: RateLimited(1500 * time.Millisecond), wantStatus: 429,
			wantBody:    `{"error":"invalid_request","error_description":"too many requests; retry later"}`,
			wantRetryAt: "2",
		},
		{
			name: "unauthorized_client", err: NewError(ErrCodeUnauthorizedClient, "client not allowed in this environment"), wantStatus: 400,
			wantBody: `{"error":"unauthorized_client","error_description":"client not allowed in this environment"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.err.Body()); got != tt.wantBody {
				t.Fatalf("Body() = %s, want %s", got, tt.wantBody)
			}
			rec := httptest.NewRecorder()
			tt.err.Write(rec)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Body.String(); got != tt.wantBody {
				t.Fatalf("written body = %s, want %s", got, tt.wantBody)
			}
			h := rec.Header()
			if h.Get("Content-Type") != "application/json;charset=UTF-8" || h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
				t.Fatalf("headers = %v, want JSON content type and no-store", h)
			}
			if got := h.Get("WWW-Authenticate"); got != tt.wantAuth {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, tt.wantAuth)
			}
			if got := h.Get("Retry-After"); got != tt.wantRetryAt {
				t.Fatalf("Retry-After = %q, want %q", got, tt.wantRetryAt)
			}
		})
	}
}

func TestTokenResponse(t *testing.T) {
	r := NewTokenResponse("eyJhbGciOi.payload.sig", 900, "read")
	rec := httptest.NewRecorder()
	r.Write(rec)
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Pragma") != "no-cache" {
		t.Fatalf("status %d headers %v, want 200 with no-store", rec.Code, rec.Header())
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"access_token": "eyJhbGciOi.payload.sig", "token_type": "Bearer", "expires_in": float64(900), "scope": "read"}
	if len(got) != len(want) {
		t.Fatalf("body = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("body[%s] = %v, want %v", k, got[k], v)
		}
	}
	if s := sprintAll(r); strings.Contains(s, "payload") {
		t.Fatalf("formatted response shows the access token: %s", s)
	}
	if s := slogAll(t, r); strings.Contains(s, "payload") {
		t.Fatalf("logged response shows the access token: %s", s)
	}
}

func FuzzParseTokenRequest(f *testing.F) {
	f.Add("POST", formCT, "", []byte("grant_type=client_credentials&client_id="+testID+"&client_secret="+testSecret))
	f.Add("POST", formCT, basic(testID, testSecret), []byte("grant_type=client_credentials&scope=a+b"))
	f.Add("POST", formCT, basic(testID, testSecret), []byte("grant_type=client_credentials&client_secret=x"))
	f.Add("POST", "application/json", "", []byte(`{"grant_type":"client_credentials"}`))
	f.Add("GET", formCT, "", []byte(""))
	f.Add("POST", formCT+"; charset=utf-8", "Basic ???", []byte("grant_type=client_credentials"))
	f.Add("POST", formCT, "", []byte("grant_type=password&grant_type=client_credentials"))
	f.Add("POST", formCT, "Bearer abc", []byte("grant_type=client_credentials&client_id=a%00"))
	descriptions := allDescriptions()
	codes := map[string]bool{ErrCodeInvalidRequest: true, ErrCodeInvalidClient: true, ErrCodeUnsupportedGrantType: true, ErrCodeInvalidScope: true}

	f.Fuzz(func(t *testing.T, method, contentType, auth string, body []byte) {
		req, err := ParseTokenRequest(method, contentType, auth, strings.NewReader(string(body)), 1024)
		if err != nil {
			if !codes[err.Code] {
				t.Fatalf("unexpected error code %q", err.Code)
			}
			if !descriptions[err.Description] {
				t.Fatalf("description %q is not one of the fixed texts", err.Description)
			}
			if (err.Status == 401) != (err.Code == ErrCodeInvalidClient) || (err.Status != 400 && err.Status != 401) {
				t.Fatalf("status %d for code %s", err.Status, err.Code)
			}
			var decoded map[string]string
			if jerr := json.Unmarshal(err.Body(), &decoded); jerr != nil || decoded["error"] != err.Code {
				t.Fatalf("Body() = %s is not the RFC JSON for %s", err.Body(), err.Code)
			}
			if !reflect.DeepEqual(req, TokenRequest{}) {
				t.Fatalf("request on error = %+v", req)
			}
			return
		}
		if method != http.MethodPost || req.GrantType != GrantTypeClientCredentials {
			t.Fatalf("success with method %q and grant type %q", method, req.GrantType)
		}
		if req.ClientID == "" || req.ClientSecret.IsZero() {
			t.Fatalf("success without a client: %+v", req)
		}
		if !validCredentialField(req.ClientID, MaxClientIDLen) || !validCredentialField(req.ClientSecret.Reveal(), maxClientSecretLen) {
			t.Fatalf("success with malformed credentials %q", req.ClientID)
		}
		switch req.AuthMethod {
		case AuthMethodBasic:
			if auth == "" {
				t.Fatal("client_secret_basic without an Authorization header")
			}
		case AuthMethodPost:
			if strings.TrimSpace(auth) != "" {
				t.Fatal("client_secret_post with an Authorization header")
			}
		default:
			t.Fatalf("auth method %q", req.AuthMethod)
		}
		if _, ok := normalizeScope(req.Scope); !ok {
			t.Fatalf("success with malformed scope %q", req.Scope)
		}
	})
}

func TestParseTokenRequestKeepsEnvironmentAndResource(t *testing.T) {
	body := "grant_type=client_credentials&environment=staging&resource=https%3A%2F%2Fapi.example.gov&resource=https%3A%2F%2Fother.example.gov"
	got, err := ParseTokenRequest("POST", "application/x-www-form-urlencoded", basic(testID, testSecret), strings.NewReader(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Environment, []string{"staging"}) || !reflect.DeepEqual(got.Resource, []string{"https://api.example.gov", "https://other.example.gov"}) {
		t.Fatalf("environment %q, resource %q", got.Environment, got.Resource)
	}
	if got, _ := ParseTokenRequest("POST", "application/x-www-form-urlencoded", basic(testID, testSecret), strings.NewReader("grant_type=client_credentials"), 0); got.Environment != nil || got.Resource != nil {
		t.Fatalf("absent parameters: environment %q, resource %q", got.Environment, got.Resource)
	}
}
