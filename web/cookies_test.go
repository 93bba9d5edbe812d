package web

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/securecookie"
	"github.com/labstack/echo/v4"
)

func TestSessionTokenCookie(t *testing.T) {
	jar, err := newCookieJar([]string{"new-session-key-0123456789abcdef0123", "old-session-key-0123456789abcdef0123"}, true)
	if err != nil {
		t.Fatal(err)
	}
	oldOnly, err := newCookieJar([]string{"old-session-key-0123456789abcdef0123"}, true)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	read := func(value string) string {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: jar.sessionName, Value: value})
		return jar.sessionToken(e.NewContext(r, httptest.NewRecorder()))
	}

	// Written and read back, with the attributes every cookie here has.
	w := httptest.NewRecorder()
	if err := jar.setSessionToken(e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), w), "tok-123"); err != nil {
		t.Fatal(err)
	}
	cks := w.Result().Cookies()
	if len(cks) != 1 || cks[0].Name != "__Host-keyconsole_session" || !cks[0].HttpOnly || !cks[0].Secure || cks[0].SameSite != http.SameSiteLaxMode || cks[0].Path != "/" {
		t.Fatalf("cookie: %+v", cks)
	}
	if got := read(cks[0].Value); got != "tok-123" {
		t.Fatalf("token read back %q", got)
	}
	// A cookie written under an older key still in the list reads.
	v, err := oldOnly.encodeSessionToken("tok-old")
	if err != nil {
		t.Fatal(err)
	}
	if got := read(v); got != "tok-old" {
		t.Fatalf("cookie under the older key: %q", got)
	}
	// Tampered, foreign-key, empty or another cookie's value: no token.
	tampered := []byte(cks[0].Value)
	tampered[len(tampered)/2] ^= 1
	foreign, _ := securecookie.EncodeMulti(jar.sessionName, []byte("tok-x"), securecookie.CodecsFromPairs([]byte("some-other-key-0123456789abcdef0123"))...)
	flash, _ := securecookie.EncodeMulti(jar.flashName, []byte("tok-123"), jar.tokenCodecs...)
	for name, value := range map[string]string{"tampered": string(tampered), "another key": foreign, "empty": "", "another cookie's value": flash} {
		if got := read(value); got != "" {
			t.Errorf("%s: token %q", name, got)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if got := jar.sessionToken(e.NewContext(r, httptest.NewRecorder())); got != "" {
		t.Fatalf("no cookie: %q", got)
	}
}
