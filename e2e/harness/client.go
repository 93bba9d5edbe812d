package harness

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Client is a plain HTTP client for one console: it keeps cookies in a jar
// and never follows redirects, so a test sees every 3xx and can forge or
// replay requests.
type Client struct {
	// HTTP is the underlying client.
	HTTP *http.Client
	// Base is the console's base URL.
	Base string
	t    testing.TB
}

// Response is a fully read response.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Location is the response's Location header.
func (r Response) Location() string { return r.Header.Get("Location") }

// Client returns a new client for the console with an empty cookie jar.
func (c *Console) Client() *Client {
	c.t.Helper()
	return NewClient(c.t, c.URL)
}

// NewClient returns a client for base with an empty cookie jar.
func NewClient(t testing.TB, base string) *Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("harness: cookie jar: %v", err)
	}
	return &Client{
		t:    t,
		Base: base,
		HTTP: &http.Client{
			Jar:     jar,
			Timeout: 15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// SetCookies puts cookies (for example Browser.Cookies) in the jar for the
// console's URL.
func (cl *Client) SetCookies(cookies []*http.Cookie) {
	u, err := url.Parse(cl.Base + "/")
	if err != nil {
		cl.t.Fatalf("harness: base URL: %v", err)
	}
	cl.HTTP.Jar.SetCookies(u, cookies)
}

// Cookies returns the jar's cookies for the console's URL.
func (cl *Client) Cookies() []*http.Cookie {
	u, _ := url.Parse(cl.Base + "/")
	return cl.HTTP.Jar.Cookies(u)
}

// Get requests path (or an absolute URL) and reads the response.
func (cl *Client) Get(path string) Response {
	cl.t.Helper()
	req, err := http.NewRequest(http.MethodGet, cl.abs(path), nil)
	if err != nil {
		cl.t.Fatalf("harness: GET %s: %v", path, err)
	}
	return cl.Do(req)
}

// PostForm posts form values to path and reads the response.
func (cl *Client) PostForm(path string, form url.Values) Response {
	cl.t.Helper()
	req, err := http.NewRequest(http.MethodPost, cl.abs(path), strings.NewReader(form.Encode()))
	if err != nil {
		cl.t.Fatalf("harness: POST %s: %v", path, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return cl.Do(req)
}

// Do sends a request (cookies from the jar are added) and reads the response.
func (cl *Client) Do(req *http.Request) Response {
	cl.t.Helper()
	resp, err := cl.HTTP.Do(req)
	if err != nil {
		cl.t.Fatalf("harness: %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		cl.t.Fatalf("harness: read %s %s: %v", req.Method, req.URL.Path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

func (cl *Client) abs(path string) string {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path
	}
	return cl.Base + path
}
