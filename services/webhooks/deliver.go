package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Delivery defaults and limits.
const (
	// ResponseHeadLimit is how many bytes of a receiver's response are kept.
	ResponseHeadLimit = 1024
	// DefaultUserAgent identifies the console's deliveries to receivers.
	DefaultUserAgent = "keyconsole-webhooks/1"
	// DefaultConnectTimeout bounds resolving and connecting (TLS handshake included).
	DefaultConnectTimeout = 5 * time.Second
	// DefaultTimeout bounds a whole delivery attempt.
	DefaultTimeout = 15 * time.Second
)

// NewHTTPClient returns the HTTP client used for deliveries: connections only through
// e, no proxy, redirects never followed (the 3xx response itself is returned), TLS 1.2
// or later, a connect timeout (resolving, connecting and the TLS handshake) and a
// total timeout for the whole exchange.
func NewHTTPClient(e *Egress, connectTimeout, totalTimeout time.Duration) *http.Client {
	return newHTTPClient(e, connectTimeout, totalTimeout, nil)
}

func newHTTPClient(e *Egress, connectTimeout, totalTimeout time.Duration, roots *x509.CertPool) *http.Client {
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		return e.DialContext(ctx, network, address)
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dial,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
		TLSHandshakeTimeout:    connectTimeout,
		ResponseHeaderTimeout:  totalTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   totalTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Delivery is one signed message to send. Secrets are the endpoint's current
// secrets, newest first; during a rotation overlap there are two.
type Delivery struct {
	URL       string
	MsgID     string
	Timestamp time.Time
	Body      []byte
	Secrets   []Secret
}

// Result is the outcome of one delivery attempt. It holds no secret and no signature.
type Result struct {
	// StatusCode is the receiver's HTTP status, 0 when no response arrived.
	StatusCode int
	// Latency is the time from sending the request to reading the response head.
	Latency time.Duration
	// ResponseHead is the first ResponseHeadLimit bytes of the response body, made
	// valid UTF-8.
	ResponseHead string
	// Err is empty on success; otherwise a clear message without secrets or
	// resolved addresses, such as "refused: a private address".
	Err string
	// Refused is true when the console refused to send at all: the URL is not
	// acceptable or the destination address is not allowed.
	Refused bool
}

// OK reports whether the receiver accepted the delivery with a 2xx status.
func (r Result) OK() bool {
	return r.Err == "" && r.StatusCode >= 200 && r.StatusCode < 300
}

// Retryable reports whether a failed real event should be tried again: any failure
// except a refusal by the console itself.
func (r Result) Retryable() bool { return !r.OK() && !r.Refused }

// DelivererOptions configures a Deliverer; zero fields take the defaults.
type DelivererOptions struct {
	ConnectTimeout time.Duration
	Timeout        time.Duration
	UserAgent      string
	// RootCAs replaces the system trust store for receivers' certificates.
	RootCAs *x509.CertPool
}

// Deliverer sends signed deliveries through an Egress.
type Deliverer struct {
	egress         *Egress
	client         *http.Client
	userAgent      string
	connectTimeout time.Duration
	timeout        time.Duration
}

// NewDeliverer builds a Deliverer whose connections all go through e.
func NewDeliverer(e *Egress, o DelivererOptions) *Deliverer {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	return &Deliverer{
		egress:         e,
		client:         newHTTPClient(e, o.ConnectTimeout, o.Timeout, o.RootCAs),
		userAgent:      o.UserAgent,
		connectTimeout: o.ConnectTimeout,
		timeout:        o.Timeout,
	}
}

// Deliver makes one attempt: it validates the URL against the egress policy, signs
// the body with every secret, POSTs it as application/json with the Standard Webhooks
// headers, and keeps the first ResponseHeadLimit bytes of the answer. A 2xx status is
// a success; a 3xx is a failure because redirects are not followed.
func (d *Deliverer) Deliver(ctx context.Context, dl Delivery) Result {
	u, err := ValidateURL(dl.URL, d.egress.policy)
	if err != nil {
		return Result{Err: err.Error(), Refused: true}
	}
	if dl.MsgID == "" || strings.ContainsAny(dl.MsgID, " \t\r\n") {
		return Result{Err: "the message id is missing or not valid"}
	}
	ts := dl.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	sig := Sign(dl.Secrets, dl.MsgID, ts, dl.Body)
	if sig == "" {
		return Result{Err: "the endpoint has no usable signing secret"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(dl.Body))
	if err != nil {
		return Result{Err: "the request could not be built"}
	}
	for k, v := range Headers(dl.MsgID, ts, sig) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.userAgent)

	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		res := Result{Latency: time.Since(start)}
		res.Err, res.Refused = d.describe(ctx, err)
		return res
	}
	defer resp.Body.Close()
	head, readErr := io.ReadAll(io.LimitReader(resp.Body, ResponseHeadLimit))
	res := Result{
		StatusCode:   resp.StatusCode,
		Latency:      time.Since(start),
		ResponseHead: headText(head),
	}
	// Drain a little more so the connection can be reused; a larger body is dropped.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))

	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.Err = fmt.Sprintf("the receiver answered %s; redirects are not followed", statusText(resp.StatusCode))
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		res.Err = fmt.Sprintf("the receiver answered %s", statusText(resp.StatusCode))
	case readErr != nil:
		msg, _ := d.describe(ctx, readErr)
		res.Err = "the response could not be read: " + msg
	}
	return res
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprintf("%d", code)
}

// describe turns a transport error into a message that names no URL and no secret.
func (d *Deliverer) describe(ctx context.Context, err error) (msg string, refused bool) {
	var refusedErr *RefusedError
	if errors.As(err, &refusedErr) {
		return refusedErr.Error(), true
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return "the delivery was canceled", false
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return fmt.Sprintf("the destination could not be reached within %s", d.connectTimeout), false
		}
		return fmt.Sprintf("the receiver did not answer within %s", d.timeout), false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return fmt.Sprintf("the host %s was not found", dnsErr.Name), false
		}
		return fmt.Sprintf("the host %s could not be resolved", dnsErr.Name), false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "the destination refused the connection", false
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the connection was closed by the receiver", false
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return "the receiver's TLS certificate was not accepted: " + certErr.Err.Error(), false
	}
	var hostErr x509.HostnameError
	if errors.As(err, &hostErr) {
		return "the receiver's TLS certificate does not match its host name", false
	}
	var recErr tls.RecordHeaderError
	if errors.As(err, &recErr) {
		return "the receiver did not answer with TLS", false
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return "the request failed: " + err.Error(), false
}

// headText makes the kept bytes valid UTF-8 (invalid sequences become U+FFFD, a rune
// cut at the limit is dropped) without exceeding ResponseHeadLimit bytes.
func headText(b []byte) string {
	if len(b) == ResponseHeadLimit {
		// Drop a trailing incomplete rune cut by the limit.
		for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
			if utf8.RuneStart(b[len(b)-i]) {
				if !utf8.FullRune(b[len(b)-i:]) {
					b = b[:len(b)-i]
				}
				break
			}
		}
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	for len(s) > ResponseHeadLimit {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// RetrySchedule spaces the attempts of a real event: exponential backoff from Base by
// Factor, capped at Max, with up to Jitter (a fraction) taken off at random, for at
// most MaxAttempts attempts in all. Test events are sent once and not retried.
type RetrySchedule struct {
	Base        time.Duration
	Factor      float64
	Max         time.Duration
	Jitter      float64
	MaxAttempts int
	// Rand returns a number in [0, 1); nil uses math/rand/v2.
	Rand func() float64
}

// DefaultRetrySchedule waits about 1m, 3m, 9m, 27m, 81m, 4h and 4h between the 8
// attempts, each shortened by up to 20% at random.
func DefaultRetrySchedule() RetrySchedule {
	return RetrySchedule{
		Base:        time.Minute,
		Factor:      3,
		Max:         4 * time.Hour,
		Jitter:      0.2,
		MaxAttempts: 8,
	}
}

// NextAttempt returns how long to wait after attempt number attempt (1 for the first)
// failed before trying again, and false when no attempt is left.
func (s RetrySchedule) NextAttempt(attempt int) (time.Duration, bool) {
	if attempt < 1 || attempt >= s.MaxAttempts {
		return 0, false
	}
	factor := s.Factor
	if factor < 1 {
		factor = 1
	}
	d := float64(s.Base) * math.Pow(factor, float64(attempt-1))
	if s.Max > 0 && d > float64(s.Max) {
		d = float64(s.Max)
	}
	if limit := float64(math.MaxInt64 / 2); d > limit {
		d = limit
	}
	if j := min(max(s.Jitter, 0), 1); j > 0 {
		r := s.Rand
		if r == nil {
			r = rand.Float64
		}
		d -= d * j * r()
	}
	return time.Duration(d), true
}
