// Package sftpd is the SSH front door of keyconsole: an SFTP-only server that
// authenticates accounts by public key and confines each account to its own
// directory.
package sftpd

import (
	"context"
	"crypto/fips140"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// DefaultMaxAuthTries is the number of authentication attempts allowed per
// connection when Config.MaxAuthTries is zero.
const DefaultMaxAuthTries = 6

// DefaultIdleTimeout closes a connection without traffic when
// Config.IdleTimeout is zero.
const DefaultIdleTimeout = 15 * time.Minute

// DefaultRecheckInterval is how often the keys of open connections are
// checked again when Config.RecheckInterval is zero.
const DefaultRecheckInterval = 2 * time.Second

const (
	// loginGraceTime bounds the whole handshake, authentication included.
	loginGraceTime = 2 * time.Minute
	// authTimeout bounds one call to the Authenticator.
	authTimeout = 30 * time.Second
	// sftpOnlyMessage is written to clients that ask for a shell or a command.
	sftpOnlyMessage = "This service only provides SFTP. Shell access and commands are not available.\r\n"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Close.
var ErrServerClosed = errors.New("sftpd: server closed")

// Identity is the account a client authenticated as.
type Identity struct {
	// AccountID is the SFTP account's database id.
	AccountID int64
	// AgencyID is the agency the account belongs to.
	AgencyID int64
	// Account is the login name.
	Account string
	// Root is the absolute host directory the account is confined to.
	Root string
	// KeyFingerprint is the SHA256 fingerprint of the key used.
	KeyFingerprint string
	// KeyID is the database id of the key used, for SessionChecker; zero
	// when the Authenticator does not say.
	KeyID int64
}

// Authenticator decides which public keys may log in to which account.
type Authenticator interface {
	// AuthenticateKey returns the identity for an active, unexpired key of
	// that account, or an error (never reveal which part failed to the client).
	AuthenticateKey(ctx context.Context, account string, key ssh.PublicKey, remoteAddr string) (Identity, error)
}

// LoginObserver may be implemented by an Authenticator that records logins.
// AuthenticateKey runs when a client offers a key, before the client has
// proved it holds the private key, so it cannot tell a login from an offer;
// LoginSucceeded is called once the client has signed with the key and the
// handshake is complete.
type LoginObserver interface {
	LoginSucceeded(ctx context.Context, id Identity, remoteAddr string)
}

// SessionChecker may be implemented by an Authenticator whose keys can stop
// being valid while a connection is open (revoked, or past their expiry
// date). Every Config.RecheckInterval the server asks it about the
// identities of all its open connections in one call and closes each
// connection it reports as no longer authorized, so a revocation ends the
// sessions opened with the key within seconds. The answer must come from
// shared state (the database), not from this process alone: the key may
// have been revoked through another replica. An error leaves the
// connections open until the next check.
type SessionChecker interface {
	// StillAuthorized reports, for each identity in order, whether the key
	// it logged in with may still be used.
	StillAuthorized(ctx context.Context, ids []Identity) ([]bool, error)
}

// Config holds what New needs to build a Server.
type Config struct {
	// Addr is the TCP address ListenAndServe listens on, e.g. "127.0.0.1:2222".
	Addr string
	// HostKey is the server's persistent host key.
	HostKey ssh.Signer
	// Auth authenticates public keys.
	Auth Authenticator
	// Logger receives login and error records; nil discards them.
	Logger *slog.Logger
	// MaxAuthTries is the number of authentication attempts per connection;
	// zero means DefaultMaxAuthTries.
	MaxAuthTries int
	// IdleTimeout closes a connection that has had no traffic for this long;
	// zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// RecheckInterval is how often the keys of open connections are checked
	// again when Auth implements SessionChecker; zero means
	// DefaultRecheckInterval.
	RecheckInterval time.Duration
}

// Server is an SFTP-only SSH server.
type Server struct {
	cfg    Config
	logger *slog.Logger

	mu        sync.Mutex
	closed    bool
	addr      net.Addr
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	// sessions are the authenticated connections and who they logged in as.
	sessions map[*ssh.ServerConn]Identity
}

// New checks the configuration and returns a Server ready to Serve.
func New(cfg Config) (*Server, error) {
	if cfg.HostKey == nil {
		return nil, errors.New("sftpd: a host key is required")
	}
	if cfg.Auth == nil {
		return nil, errors.New("sftpd: an authenticator is required")
	}
	if cfg.MaxAuthTries < 0 {
		return nil, fmt.Errorf("sftpd: MaxAuthTries must not be negative, got %d", cfg.MaxAuthTries)
	}
	if cfg.IdleTimeout < 0 {
		return nil, fmt.Errorf("sftpd: IdleTimeout must not be negative, got %s", cfg.IdleTimeout)
	}
	if cfg.RecheckInterval < 0 {
		return nil, fmt.Errorf("sftpd: RecheckInterval must not be negative, got %s", cfg.RecheckInterval)
	}
	if cfg.RecheckInterval == 0 {
		cfg.RecheckInterval = DefaultRecheckInterval
	}
	if cfg.MaxAuthTries == 0 {
		cfg.MaxAuthTries = DefaultMaxAuthTries
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg:       cfg,
		logger:    logger,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
		sessions:  make(map[*ssh.ServerConn]Identity),
	}, nil
}

// ListenAndServe listens on Config.Addr and serves until ctx ends or Close.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if s.cfg.Addr == "" {
		return errors.New("sftpd: no listen address configured")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("sftpd: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln until ctx ends or Close is called. It
// closes ln, waits for the connections it accepted to end, and returns nil
// when ctx ended, ErrServerClosed after Close, or the accept error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.addr = ln.Addr()
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	if sc, ok := s.cfg.Auth.(SessionChecker); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.recheckSessions(ctx, sc)
		}()
	}

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger.Warn("sftp accept failed; retrying", "error", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-ctx.Done():
				}
				continue
			}
			ln.Close()
			return fmt.Errorf("sftpd: accept: %w", err)
		}
		delay = 0
		if !s.track(nc) {
			nc.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.untrack(nc)
			s.handleConn(ctx, nc)
		}()
	}
}

// Addr returns the address of the listener most recently passed to Serve, or
// nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops every listener and closes every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for ln := range s.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for c := range s.conns {
		c.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sftpd: close: %w", err)
	}
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *Server) addSession(c *ssh.ServerConn, id Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[c] = id
}

func (s *Server) removeSession(c *ssh.ServerConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, c)
}

// recheckSessions asks sc about every open connection each RecheckInterval
// until ctx ends, and closes those whose key may no longer be used.
func (s *Server) recheckSessions(ctx context.Context, sc SessionChecker) {
	t := time.NewTicker(s.cfg.RecheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.recheckOnce(ctx, sc)
	}
}

func (s *Server) recheckOnce(ctx context.Context, sc SessionChecker) {
	s.mu.Lock()
	conns := make([]*ssh.ServerConn, 0, len(s.sessions))
	ids := make([]Identity, 0, len(s.sessions))
	for c, id := range s.sessions {
		conns = append(conns, c)
		ids = append(ids, id)
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	checkCtx, cancel := context.WithTimeout(ctx, authTimeout)
	defer cancel()
	ok, err := sc.StillAuthorized(checkCtx, ids)
	if err == nil && len(ok) != len(ids) {
		err = fmt.Errorf("sftpd: %d answers for %d connections", len(ok), len(ids))
	}
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("sftp sessions could not be checked again; they stay open until the next check", "sessions", len(ids), "error", err)
		}
		return
	}
	for i, c := range conns {
		if ok[i] {
			continue
		}
		s.logger.Info("sftp session ended: its key was revoked or expired", "account", ids[i].Account, "account_id", ids[i].AccountID,
			"remote_addr", c.RemoteAddr().String(), "key_fingerprint", ids[i].KeyFingerprint)
		c.Close()
	}
}

// Keys under which the authenticated Identity travels in ssh.Permissions.
const (
	extAccountID   = "keyconsole-account-id"
	extAgencyID    = "keyconsole-agency-id"
	extAccount     = "keyconsole-account"
	extRoot        = "keyconsole-root"
	extFingerprint = "keyconsole-key-fingerprint"
	extKeyID       = "keyconsole-key-id"
)

func identityExtensions(id Identity) map[string]string {
	return map[string]string{
		extAccountID:   strconv.FormatInt(id.AccountID, 10),
		extAgencyID:    strconv.FormatInt(id.AgencyID, 10),
		extAccount:     id.Account,
		extRoot:        id.Root,
		extFingerprint: id.KeyFingerprint,
		extKeyID:       strconv.FormatInt(id.KeyID, 10),
	}
}

func identityFromExtensions(ext map[string]string) (Identity, error) {
	accountID, err := strconv.ParseInt(ext[extAccountID], 10, 64)
	if err != nil {
		return Identity{}, fmt.Errorf("sftpd: identity account id: %w", err)
	}
	agencyID, err := strconv.ParseInt(ext[extAgencyID], 10, 64)
	if err != nil {
		return Identity{}, fmt.Errorf("sftpd: identity agency id: %w", err)
	}
	keyID, err := strconv.ParseInt(ext[extKeyID], 10, 64)
	if err != nil {
		return Identity{}, fmt.Errorf("sftpd: identity key id: %w", err)
	}
	return Identity{
		AccountID:      accountID,
		AgencyID:       agencyID,
		Account:        ext[extAccount],
		Root:           ext[extRoot],
		KeyFingerprint: ext[extFingerprint],
		KeyID:          keyID,
	}, nil
}

// Algorithms offered to clients. SHA-1 is never offered. In FIPS 140 mode
// only approved key exchanges are offered, and when FIPS 140 is enforced
// only the ciphers the enforced module permits for SSH.
var (
	kexDefault  = []string{ssh.KeyExchangeMLKEM768X25519, ssh.KeyExchangeCurve25519, ssh.KeyExchangeECDHP256, ssh.KeyExchangeECDHP384, ssh.KeyExchangeECDHP521}
	kexFIPS     = []string{ssh.KeyExchangeECDHP256, ssh.KeyExchangeECDHP384, ssh.KeyExchangeECDHP521}
	cipherCTR   = []string{ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR}
	cipherGCM   = []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM}
	macsAllowed = []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM, ssh.HMACSHA256, ssh.HMACSHA512}
	pubKeyAlgos = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoSKECDSA256,
		ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
)

func algorithms() (kex, ciphers []string) {
	switch {
	case fips140.Enforced():
		return kexFIPS, cipherCTR
	case fips140.Enabled():
		return kexFIPS, append(append([]string{}, cipherGCM...), cipherCTR...)
	default:
		return kexDefault, append(append(append([]string{}, cipherGCM...), ssh.CipherChaCha20Poly1305), cipherCTR...)
	}
}

// sshConfig builds the per-connection server configuration; ctx bounds
// calls to the Authenticator.
func (s *Server) sshConfig(ctx context.Context) *ssh.ServerConfig {
	kex, ciphers := algorithms()
	cfg := &ssh.ServerConfig{
		Config: ssh.Config{
			KeyExchanges: kex,
			Ciphers:      ciphers,
			MACs:         macsAllowed,
		},
		MaxAuthTries:            s.cfg.MaxAuthTries,
		PublicKeyAuthAlgorithms: pubKeyAlgos,
		ServerVersion:           "SSH-2.0-keyconsole",
		PublicKeyCallback: func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			return s.authenticate(ctx, conn, key)
		},
	}
	cfg.AddHostKey(s.cfg.HostKey)
	return cfg
}

// errRefused is what the SSH layer hears about any failed authentication;
// the reason stays in the server log.
var errRefused = errors.New("sftpd: public key refused")

func (s *Server) authenticate(ctx context.Context, conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	remote := conn.RemoteAddr().String()
	fingerprint := ssh.FingerprintSHA256(key)
	ctx, cancel := context.WithTimeout(ctx, authTimeout)
	defer cancel()
	id, err := s.cfg.Auth.AuthenticateKey(ctx, conn.User(), key, remote)
	if err != nil {
		s.logger.Info("sftp key refused", "account", conn.User(), "remote_addr", remote,
			"key_type", key.Type(), "key_fingerprint", fingerprint, "error", err)
		return nil, errRefused
	}
	if !filepath.IsAbs(id.Root) {
		s.logger.Error("sftp account has no absolute root directory", "account", conn.User(), "account_id", id.AccountID)
		return nil, errRefused
	}
	id.Root = filepath.Clean(id.Root)
	if id.KeyFingerprint == "" {
		id.KeyFingerprint = fingerprint
	}
	return &ssh.Permissions{Extensions: identityExtensions(id)}, nil
}

// handleConn runs one client connection from handshake to close.
func (s *Server) handleConn(ctx context.Context, nc net.Conn) {
	remote := nc.RemoteAddr().String()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	defer nc.Close()

	dc := &deadlineConn{Conn: nc, idle: s.cfg.IdleTimeout}
	if err := nc.SetDeadline(time.Now().Add(loginGraceTime)); err != nil {
		return
	}
	sconn, chans, reqs, err := ssh.NewServerConn(dc, s.sshConfig(ctx))
	if err != nil {
		s.logger.Debug("sftp handshake failed", "remote_addr", remote, "error", err)
		return
	}
	defer sconn.Close()
	dc.startIdle()
	go ssh.DiscardRequests(reqs)

	id, err := identityFromExtensions(sconn.Permissions.Extensions)
	if err != nil {
		s.logger.Error("sftp login without identity", "remote_addr", remote, "error", err)
		return
	}
	s.addSession(sconn, id)
	defer s.removeSession(sconn)
	if o, ok := s.cfg.Auth.(LoginObserver); ok {
		o.LoginSucceeded(ctx, id, remote)
	}
	root, err := openAccountRoot(id.Root)
	if err != nil {
		s.logger.Error("sftp account directory unavailable", "account", id.Account, "account_id", id.AccountID, "error", err)
		return
	}
	defer root.Close()

	started := time.Now()
	s.logger.Info("sftp login", "account", id.Account, "account_id", id.AccountID, "agency_id", id.AgencyID,
		"remote_addr", remote, "key_fingerprint", id.KeyFingerprint, "client_version", string(sconn.ClientVersion()))

	fsys := &accountFS{root: root, account: id.Account, logger: s.logger}
	var sessions sync.WaitGroup
	for nch := range chans {
		if nch.ChannelType() != "session" {
			if err := nch.Reject(ssh.Prohibited, "only SFTP sessions are allowed"); err != nil {
				break
			}
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			s.handleSession(ch, chReqs, fsys)
		}()
	}
	sconn.Close()
	sessions.Wait()
	s.logger.Info("sftp logout", "account", id.Account, "account_id", id.AccountID, "remote_addr", remote,
		"duration", time.Since(started).Round(time.Millisecond).String())
}

// openAccountRoot creates the account directory on first login and opens it
// as the confinement root.
func openAccountRoot(dir string) (*os.Root, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sftpd: create account directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("sftpd: open account directory: %w", err)
	}
	return root, nil
}

// handleSession serves the requests of one session channel: the sftp
// subsystem is started once; shells and commands end with a message and
// exit status 1; everything else is declined.
func (s *Server) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request, fsys *accountFS) {
	var once sync.Once
	var done sync.WaitGroup
	defer done.Wait()
	for req := range reqs {
		switch req.Type {
		case "subsystem":
			var payload struct{ Name string }
			if err := ssh.Unmarshal(req.Payload, &payload); err != nil || payload.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			started := false
			once.Do(func() { started = true })
			if !started {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			done.Add(1)
			go func() {
				defer done.Done()
				s.serveSFTP(ch, fsys)
			}()
		case "shell", "exec":
			started := false
			once.Do(func() { started = true })
			if !started {
				req.Reply(false, nil)
				continue
			}
			s.logger.Info("sftp shell or command refused", "account", fsys.account, "request", req.Type)
			req.Reply(true, nil)
			io.WriteString(ch.Stderr(), sftpOnlyMessage)
			sendExitStatus(ch, 1)
			ch.Close()
		default:
			// pty-req, env, x11-req, agent forwarding, signals and the like.
			req.Reply(false, nil)
		}
	}
}

func (s *Server) serveSFTP(ch ssh.Channel, fsys *accountFS) {
	srv := sftp.NewRequestServer(ch, newHandlers(fsys))
	err := srv.Serve()
	status := uint32(0)
	if err != nil && !errors.Is(err, io.EOF) {
		s.logger.Warn("sftp session ended with an error", "account", fsys.account, "error", err)
		status = 1
	}
	// srv.Close would close the channel itself; the exit status goes first.
	sendExitStatus(ch, status)
	ch.Close()
}

func sendExitStatus(ch ssh.Channel, status uint32) {
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
}

// deadlineConn bounds the handshake with a fixed deadline and, once
// authenticated, closes the connection after IdleTimeout without traffic.
type deadlineConn struct {
	net.Conn
	idle   time.Duration
	active atomic.Bool
}

func (c *deadlineConn) startIdle() {
	c.active.Store(true)
	c.Conn.SetDeadline(time.Now().Add(c.idle))
}

// Read extends the deadline before each read once the session is active.
func (c *deadlineConn) Read(p []byte) (int, error) {
	if c.active.Load() {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// Write extends the deadline before each write once the session is active.
func (c *deadlineConn) Write(p []byte) (int, error) {
	if c.active.Load() {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.idle)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}
