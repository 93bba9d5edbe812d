package webhooks

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

type receivedRequest struct {
	method  string
	header  http.Header
	body    []byte
	verdict map[string]error
}

// officialLibraryReceiver is a real HTTP receiver on 127.0.0.1 that checks each
// delivery with the official Go library once per secret it is given.
type officialLibraryReceiver struct {
	t       *testing.T
	mu      sync.Mutex
	got     []receivedRequest
	secrets map[string]Secret
	status  int
	reply   string
}

func (rv *officialLibraryReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rv.t.Errorf("receiver read: %v", err)
	}
	rr := receivedRequest{method: r.Method, header: r.Header.Clone(), body: body, verdict: map[string]error{}}
	for name, s := range rv.secrets {
		wh, err := standardwebhooks.NewWebhook(s.WhsecForm())
		if err != nil {
			rv.t.Errorf("NewWebhook: %v", err)
			continue
		}
		rr.verdict[name] = wh.Verify(body, r.Header)
	}
	rv.mu.Lock()
	rv.got = append(rv.got, rr)
	rv.mu.Unlock()
	w.WriteHeader(rv.status)
	_, _ = io.WriteString(w, rv.reply)
}

func (rv *officialLibraryReceiver) requests() []receivedRequest {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]receivedRequest(nil), rv.got...)
}

func loopbackDeliverer(t *testing.T, o DelivererOptions, p EgressPolicy) *Deliverer {
	t.Helper()
	return NewDeliverer(NewEgress(p, WithResolver(fakeDNS(t, nil)), WithConnectTimeout(2*time.Second)), o)
}

func TestDeliverToLocalReceiver(t *testing.T) {
	oldSecret := mustParseSecret(t, "previous-secret-0001")
	newSecret, err := GenerateSecret()
	if err != nil {
		t.Fatalf("GenerateSecret: %v", err)
	}
	other := mustParseSecret(t, "unrelated-secret-0001")
	rv := &officialLibraryReceiver{t: t, status: http.StatusOK, reply: `{"received":true}`,
		secrets: map[string]Secret{"old": oldSecret, "new": newSecret, "other": other}}
	srv := httptest.NewServer(rv)
	defer srv.Close()

	d := loopbackDeliverer(t, DelivererOptions{Timeout: 5 * time.Second}, loopbackPolicy())
	body := []byte(`{"type":"key.rotated","data":{"id":"k_1"}}`)
	dl := Delivery{URL: srv.URL + "/hook?src=console", MsgID: NewMessageID(), Timestamp: time.Now(), Body: body, Secrets: []Secret{newSecret, oldSecret}}
	res := d.Deliver(context.Background(), dl)

	if !res.OK() || res.Err != "" || res.Refused {
		t.Fatalf("Deliver = %+v, want success", res)
	}
	if res.StatusCode != http.StatusOK || res.ResponseHead != `{"received":true}` {
		t.Fatalf("status %d head %q", res.StatusCode, res.ResponseHead)
	}
	if res.Latency <= 0 || res.Latency > 5*time.Second {
		t.Fatalf("latency %v out of range", res.Latency)
	}
	if res.Retryable() {
		t.Fatal("a success is retryable")
	}

	got := rv.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	r := got[0]
	if r.method != http.MethodPost || string(r.body) != string(body) {
		t.Fatalf("receiver got %s %q", r.method, r.body)
	}
	if r.verdict["old"] != nil || r.verdict["new"] != nil {
		t.Fatalf("official library refused: old=%v new=%v", r.verdict["old"], r.verdict["new"])
	}
	if !errors.Is(r.verdict["other"], standardwebhooks.ErrNoMatchingSignature) {
		t.Fatalf("official library with another secret = %v, want no matching signature", r.verdict["other"])
	}
	checks := map[string]string{
		"Content-Type":  "application/json",
		"User-Agent":    DefaultUserAgent,
		HeaderID:        dl.MsgID,
		HeaderSignature: Sign(dl.Secrets, dl.MsgID, dl.Timestamp, body),
	}
	for k, want := range checks {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if n := len(strings.Fields(r.header.Get(HeaderSignature))); n != 2 {
		t.Errorf("receiver got %d signatures, want 2", n)
	}
}

func TestDeliverOverTLS(t *testing.T) {
	s := mustParseSecret(t, "tls-receiver-secret-1")
	rv := &officialLibraryReceiver{t: t, status: http.StatusNoContent, secrets: map[string]Secret{"s": s}}
	srv := httptest.NewUnstartedServer(rv)
	// The handshake the untrusting client aborts below would otherwise be logged.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	p := loopbackPolicy()
	p.RequireHTTPS = true

	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	d := loopbackDeliverer(t, DelivererOptions{RootCAs: roots, Timeout: 5 * time.Second}, p)
	res := d.Deliver(context.Background(), Delivery{URL: srv.URL + "/hook", MsgID: NewMessageID(), Timestamp: time.Now(), Body: []byte(`{}`), Secrets: []Secret{s}})
	if !res.OK() || res.StatusCode != http.StatusNoContent {
		t.Fatalf("Deliver over TLS = %+v, want 204", res)
	}
	if got := rv.requests(); len(got) != 1 || got[0].verdict["s"] != nil {
		t.Fatalf("receiver verdicts %+v", got)
	}

	// Without the test CA the certificate is not trusted.
	d = loopbackDeliverer(t, DelivererOptions{Timeout: 5 * time.Second}, p)
	res = d.Deliver(context.Background(), Delivery{URL: srv.URL + "/hook", MsgID: NewMessageID(), Body: []byte(`{}`), Secrets: []Secret{s}})
	if res.OK() || !strings.Contains(res.Err, "TLS certificate") {
		t.Fatalf("Deliver with an untrusted certificate = %+v, want a TLS certificate error", res)
	}
}

func TestDeliverRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/loop" {
			http.Redirect(w, r, "/hook", http.StatusTemporaryRedirect)
			return
		}
		http.Redirect(w, r, "http://10.0.0.1/steal", http.StatusFound)
	}))
	defer srv.Close()

	rec := newRecorder(t)
	rec.real[strings.TrimPrefix(srv.URL, "http://")] = true
	e := NewEgress(loopbackPolicy(), WithConnect(rec.connect), WithResolver(fakeDNS(t, nil)))
	d := NewDeliverer(e, DelivererOptions{Timeout: 5 * time.Second})
	s := mustParseSecret(t, "redirect-test-secret")

	tests := []struct {
		path   string
		status int
	}{
		{"/hook", http.StatusFound},
		{"/loop", http.StatusTemporaryRedirect},
	}
	for _, tt := range tests {
		before := hits.Load()
		res := d.Deliver(context.Background(), Delivery{URL: srv.URL + tt.path, MsgID: NewMessageID(), Body: []byte(`{}`), Secrets: []Secret{s}})
		if res.StatusCode != tt.status || res.OK() || res.Refused {
			t.Fatalf("Deliver(%s) = %+v, want a %d failure", tt.path, res, tt.status)
		}
		if !strings.Contains(res.Err, "redirects are not followed") {
			t.Fatalf("Err = %q, want it to say redirects are not followed", res.Err)
		}
		if n := hits.Load() - before; n != 1 {
			t.Fatalf("receiver got %d requests for %s, want 1 (the redirect was followed)", n, tt.path)
		}
	}
	for _, a := range rec.addresses() {
		if a != strings.TrimPrefix(srv.URL, "http://") {
			t.Fatalf("connect was asked for %s", a)
		}
	}
}

func TestDeliverRefusedDestinations(t *testing.T) {
	dns := map[string][]string{"internal.test": {"10.1.2.3"}, "rebind.test": {"::ffff:169.254.169.254"}}
	s := mustParseSecret(t, "refusal-test-secret-1")
	onlyV4Loopback := EgressPolicy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	tests := []struct {
		name   string
		policy EgressPolicy
		url    string
		want   string
	}{
		{"loopback without allowlist", EgressPolicy{}, "http://127.0.0.1:9/hook", "refused: a loopback address"},
		{"IPv6 loopback", onlyV4Loopback, "http://[::1]:9/hook", "refused: a loopback address"},
		{"private", onlyV4Loopback, "http://10.0.0.1/hook", "refused: a private address"},
		{"metadata", onlyV4Loopback, "http://169.254.169.254/latest/meta-data/", "refused: the cloud metadata address"},
		{"mapped private", onlyV4Loopback, "http://[::ffff:10.0.0.1]/hook", "refused: a private address"},
		{"name resolving to private", onlyV4Loopback, "http://internal.test/hook", "refused: a private address"},
		{"name resolving to mapped metadata", onlyV4Loopback, "http://rebind.test:8080/x", "refused: the cloud metadata address"},
		{"http in production", EgressPolicy{RequireHTTPS: true, AllowedCIDRs: onlyV4Loopback.AllowedCIDRs}, "http://127.0.0.1:9/hook", "The URL must use https."},
		{"credentials", onlyV4Loopback, "http://u:p@127.0.0.1:9/hook", "The URL must not contain a user name or password."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			d := NewDeliverer(NewEgress(tt.policy, WithConnect(rec.connect), WithResolver(fakeDNS(t, dns))), DelivererOptions{Timeout: 2 * time.Second})
			res := d.Deliver(context.Background(), Delivery{URL: tt.url, MsgID: NewMessageID(), Body: []byte(`{}`), Secrets: []Secret{s}})
			if res.Err != tt.want {
				t.Fatalf("Err = %q, want %q", res.Err, tt.want)
			}
			if !res.Refused || res.OK() || res.Retryable() || res.StatusCode != 0 {
				t.Fatalf("Deliver = %+v, want a refusal", res)
			}
			if seen := rec.addresses(); len(seen) != 0 {
				t.Fatalf("connect was reached for %v", seen)
			}
		})
	}
}

func TestDeliverTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	defer close(release)

	d := loopbackDeliverer(t, DelivererOptions{Timeout: 300 * time.Millisecond}, loopbackPolicy())
	start := time.Now()
	res := d.Deliver(context.Background(), Delivery{URL: srv.URL, MsgID: NewMessageID(), Body: []byte(`{}`), Secrets: []Secret{mustParseSecret(t, "timeout-test-secret1")}})
	elapsed := time.Since(start)
	if res.Err != "the receiver did not answer within 300ms" {
		t.Fatalf("Err = %q, want the timeout message", res.Err)
	}
	if res.OK() || res.Refused || !res.Retryable() || res.StatusCode != 0 {
		t.Fatalf("Deliver = %+v, want a retryable failure", res)
	}
	if elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
		t.Fatalf("Deliver took %v with a 300ms timeout", elapsed)
	}
}

func TestDeliverCanceled(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	d := loopbackDeliverer(t, DelivererOptions{Timeout: 5 * time.Second}, loopbackPolicy())
	res := d.Deliver(ctx, Delivery{URL: srv.URL, MsgID: NewMessageID(), Body: []byte(`{}`), Secrets: []Secret{mustParseSecret(t, "cancel-test-secret-1")}})
	if res.Err != "the delivery was canceled" {
		t.Fatalf("Err = %q, want canceled", res.Err)
	}
}

func TestDeliverResponseHead(t *testing.T) {
	tests := []struct {
		name   string
		status int
		reply  string
		want   string
		errMsg string
	}{
		{"truncated to 1 KiB", http.StatusOK, strings.Repeat("x", 5000), strings.Repeat("x", ResponseHeadLimit), ""},
		{"rune cut at the limit", http.StatusOK, strings.Repeat("a", 1023) + "é" + strings.Repeat("b", 100), strings.Repeat("a", 1023), ""},
		{"invalid UTF-8", http.StatusOK, "ok\xff\xfe", "ok\uFFFD", ""},
		{"server error", http.StatusInternalServerError, "database down", "database down", "the receiver answered 500 Internal Server Error"},
		{"client error", http.StatusUnauthorized, "bad signature", "bad signature", "the receiver answered 401 Unauthorized"},
		{"unknown status", 599, "", "", "the receiver answered 599"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.reply)
			}))
			defer srv.Close()
			d := loopbackDeliverer(t, DelivererOptions{Timeout: 5 * time.Second}, loopbackPolicy())
			res := d.Deliver(context.Background(), Delivery{URL: srv.URL, MsgID: NewMessageID(), Body: []byte(`{}`), Secrets: []Secret{mustParseSecret(t, "head-test-secret-01")}})
			if res.ResponseHead != tt.want {
				t.Fatalf("ResponseHead = %q (%d bytes), want %d bytes", res.ResponseHead, len(res.ResponseHead), len(tt.want))
			}
			if len(res.ResponseHead) > ResponseHeadLimit || !utf8.ValidString(res.ResponseHead) {
				t.Fatalf("ResponseHead is %d bytes, valid UTF-8 %v", len(res.ResponseHead), utf8.ValidString(res.ResponseHead))
			}
			if res.Err != tt.errMsg || res.StatusCode != tt.status {
				t.Fatalf("Deliver = %+v, want status %d and Err %q", res, tt.status, tt.errMsg)
			}
			if tt.errMsg != "" && !res.Retryable() {
				t.Fatal("a failed delivery is not retryable")
			}
		})
	}
}

func TestDeliverConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d := loopbackDeliverer(t, DelivererOptions{Timeout: 5 * time.Second}, loopbackPolicy())
	res := d.Deliver(context.Background(), Delivery{URL: "http://" + addr + "/hook", MsgID: NewMessageID(), Body: []byte(`{}`), Secrets: []Secret{mustParseSecret(t, "closed-port-secret-1")}})
	if res.Err != "the destination refused the connection" || res.Refused || res.StatusCode != 0 {
		t.Fatalf("Deliver = %+v, want a refused connection", res)
	}
}

func TestDeliverInvalidInputsSendNothing(t *testing.T) {
	s := mustParseSecret(t, "input-check-secret-1")
	tests := []struct {
		name string
		dl   Delivery
		want string
	}{
		{"no secret", Delivery{URL: "http://127.0.0.1:9/", MsgID: "msg_1", Body: []byte(`{}`)}, "the endpoint has no usable signing secret"},
		{"zero secret", Delivery{URL: "http://127.0.0.1:9/", MsgID: "msg_1", Body: []byte(`{}`), Secrets: []Secret{{}}}, "the endpoint has no usable signing secret"},
		{"no message id", Delivery{URL: "http://127.0.0.1:9/", Body: []byte(`{}`), Secrets: []Secret{s}}, "the message id is missing or not valid"},
		{"message id with newline", Delivery{URL: "http://127.0.0.1:9/", MsgID: "msg_1\r\nX: y", Body: []byte(`{}`), Secrets: []Secret{s}}, "the message id is missing or not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			d := NewDeliverer(NewEgress(loopbackPolicy(), WithConnect(rec.connect), WithResolver(fakeDNS(t, nil))), DelivererOptions{})
			res := d.Deliver(context.Background(), tt.dl)
			if res.Err != tt.want || res.OK() {
				t.Fatalf("Deliver = %+v, want Err %q", res, tt.want)
			}
			if seen := rec.addresses(); len(seen) != 0 {
				t.Fatalf("connect was reached for %v", seen)
			}
		})
	}
}

func TestNewHTTPClient(t *testing.T) {
	c := NewHTTPClient(NewEgress(EgressPolicy{}), 2*time.Second, 7*time.Second)
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport is %T", c.Transport)
	}
	if tr.Proxy != nil {
		t.Error("a proxy function is set")
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion < 0x0303 {
		t.Error("TLS minimum is below 1.2")
	}
	if tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("certificate verification is off")
	}
	if c.Timeout != 7*time.Second || tr.TLSHandshakeTimeout != 2*time.Second {
		t.Errorf("timeouts: total %v, handshake %v", c.Timeout, tr.TLSHandshakeTimeout)
	}
	if c.CheckRedirect == nil {
		t.Fatal("CheckRedirect is nil, so redirects would be followed")
	}
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "example.com"}}
	if err := c.CheckRedirect(req, []*http.Request{req}); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("CheckRedirect = %v, want http.ErrUseLastResponse", err)
	}
}

func TestHeadText(t *testing.T) {
	full := strings.Repeat("a", ResponseHeadLimit)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"short", "hello", "hello"},
		{"empty", "", ""},
		{"exactly the limit", full, full},
		{"3-byte rune cut after 1 byte", strings.Repeat("a", ResponseHeadLimit-1) + "€"[:1], strings.Repeat("a", ResponseHeadLimit-1)},
		{"3-byte rune cut after 2 bytes", strings.Repeat("a", ResponseHeadLimit-2) + "€"[:2], strings.Repeat("a", ResponseHeadLimit-2)},
		{"complete rune at the end", strings.Repeat("a", ResponseHeadLimit-3) + "€", strings.Repeat("a", ResponseHeadLimit-3) + "€"},
		{"a run of invalid bytes", strings.Repeat("\xff", ResponseHeadLimit), "\uFFFD"},
		// Each lone invalid byte grows to 3 bytes; the result is cut back to the limit
		// at a rune boundary: 256 "a\uFFFD" pairs are exactly 1024 bytes.
		{"invalid bytes interleaved", strings.Repeat("a\xff", ResponseHeadLimit/2), strings.Repeat("a\uFFFD", ResponseHeadLimit/4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := headText([]byte(tt.in))
			if got != tt.want {
				t.Fatalf("headText = %q (%d bytes), want %d bytes", got, len(got), len(tt.want))
			}
			if len(got) > ResponseHeadLimit || !utf8.ValidString(got) {
				t.Fatalf("headText gave %d bytes, valid %v", len(got), utf8.ValidString(got))
			}
		})
	}
}

func TestRetrySchedule(t *testing.T) {
	noJitter := DefaultRetrySchedule()
	noJitter.Rand = func() float64 { return 0 }
	want := []time.Duration{time.Minute, 3 * time.Minute, 9 * time.Minute, 27 * time.Minute, 81 * time.Minute, 4 * time.Hour, 4 * time.Hour}
	for i, w := range want {
		got, ok := noJitter.NextAttempt(i + 1)
		if !ok || got != w {
			t.Errorf("NextAttempt(%d) = %v, %v; want %v, true", i+1, got, ok, w)
		}
	}
	for _, attempt := range []int{0, -1, 8, 9, 100} {
		if d, ok := noJitter.NextAttempt(attempt); ok {
			t.Errorf("NextAttempt(%d) = %v, true; want no further attempt", attempt, d)
		}
	}

	fullJitter := DefaultRetrySchedule()
	fullJitter.Rand = func() float64 { return 0.999999 }
	for i, w := range want {
		got, _ := fullJitter.NextAttempt(i + 1)
		low := time.Duration(float64(w) * (1 - fullJitter.Jitter))
		if got < low || got > w {
			t.Errorf("NextAttempt(%d) with jitter = %v, want within [%v, %v]", i+1, got, low, w)
		}
	}

	// The default random source stays within the bounds too and varies.
	seen := map[time.Duration]bool{}
	for range 50 {
		got, ok := DefaultRetrySchedule().NextAttempt(3)
		if !ok || got < time.Duration(float64(9*time.Minute)*0.8) || got > 9*time.Minute {
			t.Fatalf("NextAttempt(3) = %v, %v", got, ok)
		}
		seen[got] = true
	}
	if len(seen) < 2 {
		t.Fatal("jitter never varied")
	}

	huge := RetrySchedule{Base: time.Hour, Factor: 10, MaxAttempts: 100}
	if got, ok := huge.NextAttempt(50); !ok || got <= 0 {
		t.Fatalf("uncapped schedule overflowed: %v", got)
	}
	single := RetrySchedule{MaxAttempts: 1}
	if _, ok := single.NextAttempt(1); ok {
		t.Fatal("a one-attempt schedule (test events) retries")
	}
}
