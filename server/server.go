// Package server assembles a running jmapd from its parts: the store, the
// authenticator, the JMAP registry and endpoints, the admin socket, metrics
// and the HTTP server with its graceful shutdown. cmd/jmapd and the
// in-process test harness both start servers through it.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/internal/admin"
	"github.com/jmapd/jmapd/internal/auth"
	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/internal/lmtp"
	"github.com/jmapd/jmapd/internal/metrics"
	"github.com/jmapd/jmapd/internal/origin"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/methods"
	"github.com/jmapd/jmapd/push"
	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// Options configures New.
type Options struct {
	// Config is the validated configuration; required.
	Config config.Config
	// Log is the root logger.
	Log zerolog.Logger
	// TestTypes registers the test-only Note type (methods.Options).
	TestTypes bool
}

// Server is a running jmapd.
type Server struct {
	cfg      config.Config
	log      zerolog.Logger
	st       *badger.DB
	auth     *auth.Authenticator
	reg      *jmap.Registry
	metrics  *metrics.Metrics
	http     *http.Server
	ln       net.Listener
	url      string
	stop     context.CancelFunc
	push     *push.Endpoints
	webPush  *push.WebPush
	lmtp     *lmtp.Server // nil without [lmtp] listen
	lmtpAddr net.Addr
	bg       sync.WaitGroup
	// usernames caches each principal's login name (email) by id.
	usernames sync.Map
}

// New opens the store in the configured data directory, listens on the
// configured address and starts the admin socket and background work. Call
// Serve to answer requests and Shutdown to stop.
func New(ctx context.Context, opt Options) (*Server, error) {
	cfg := opt.Config
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	log := opt.Log
	mapped := cfg.MappedBudgetMB << 20
	if mapped == 0 {
		mapped = -1 // no bound
	}
	st, err := badger.Open(badger.Options{Dir: cfg.Data, BlobGrace: cfg.Blobs.Grace.Duration, MappedBudget: mapped,
		Logf: func(level, msg string) {
			if level == "error" {
				log.Error().Str("component", "badger").Msg(msg)
			} else {
				log.Warn().Str("component", "badger").Msg(msg)
			}
		}})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, st: st}
	s.auth = auth.New(st, auth.Options{CacheTTL: cfg.Auth.CacheTTL.Duration,
		MaxFailures: cfg.Auth.MaxFailures, Window: cfg.Auth.FailureWindow.Duration})
	lim := jmap.Limits{
		MaxSizeUpload: cfg.Limits.MaxSizeUpload, MaxConcurrentUpload: cfg.Limits.MaxConcurrentUpload,
		MaxSizeRequest: cfg.Limits.MaxSizeRequest, MaxConcurrentRequests: cfg.Limits.MaxConcurrentRequests,
		MaxCallsInRequest: cfg.Limits.MaxCallsInRequest, MaxObjectsInGet: cfg.Limits.MaxObjectsInGet,
		MaxObjectsInSet: cfg.Limits.MaxObjectsInSet,
	}
	accts := methods.NewAccounts(st)
	s.reg = jmap.NewRegistry(st, accts, lim)
	agent, err := newAgent(cfg, st, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	methods.Register(s.reg, st, accts, methods.Options{TestTypes: opt.TestTypes, Send: sendOptions(cfg, agent)})
	if err := methods.UpgradeAccounts(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	s.metrics = metrics.New(st.Size)
	s.reg.OnCall = func(name string, errType jmap.ErrorType, sec float64) {
		s.metrics.ObserveCall(name, string(errType), sec)
	}

	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s.url = cfg.BaseURL
	if s.url == "" {
		c := cfg
		c.Listen = s.ln.Addr().String()
		s.url = c.URL()
	}

	broker := push.NewBroker(st, accts, log)
	js := &jmap.Server{Registry: s.reg, BaseURL: s.url, Auth: s.authenticate,
		OpenBlob: func(ctx context.Context, acct store.AccountID, id store.BlobID, off, n int64) (store.BlobInfo, io.ReadSeekCloser, error) {
			return accts.OpenBlob(ctx, acct, id, off, n)
		},
		Uploaded: func(ctx context.Context, acct store.AccountID, who store.PrincipalID, id store.BlobID) error {
			return accts.NoteUpload(ctx, acct, who, id)
		}}
	s.push = push.NewEndpoints(broker, push.Options{BaseURL: s.url, Runner: js, Limits: lim,
		AllowedOrigins: cfg.Push.AllowedOrigins, MaxConnsPerUser: cfg.Push.MaxConnectionsPerUser})
	js.Extra = s.push.Routes()
	js.Auth = s.push.Authenticate(s.authenticate)
	s.reg.AddCapability(push.CapWebSocket, s.push.Capability())
	s.webPush, err = push.NewWebPush(ctx, st, broker, s.reg, log, push.WebPushOptions{Subject: s.url,
		AllowHTTP: cfg.Push.AllowHTTPSubscriptions})
	if err != nil {
		s.ln.Close()
		st.Close()
		return nil, err
	}
	r := mux.NewRouter().UseEncodedPath()
	js.Routes(r)
	r.Handle("/healthz", http.HandlerFunc(s.healthz)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", s.metrics.Handler()).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusNotFound, Detail: "not found"})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		jmap.WriteProblem(w, &jmap.Problem{Type: "about:blank", Status: http.StatusMethodNotAllowed, Detail: "method not allowed"})
	})
	s.http = &http.Server{
		Handler:           s.logRequests(cors(origin.New(s.url, cfg.Push.AllowedOrigins), r)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnState:         s.metrics.ConnState,
		ErrorLog:          nil,
	}
	// Long-lived event streams end when shutdown begins, so draining does
	// not wait for them.
	s.http.RegisterOnShutdown(broker.Close)
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			s.ln.Close()
			st.Close()
			return nil, fmt.Errorf("load TLS certificate: %w", err)
		}
		s.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	bgctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	// The admin socket listens before New returns: an admin command run
	// once the server has announced itself always finds it.
	adminLn, err := admin.Listen(ctx, admin.SocketPath(cfg.Data))
	if err != nil {
		cancel()
		s.ln.Close()
		st.Close()
		return nil, err
	}
	s.bg.Add(3)
	go func() {
		defer s.bg.Done()
		agent.Run(bgctx)
	}()
	go func() {
		defer s.bg.Done()
		if err := admin.ServeListener(admin.WithSharer(bgctx, Share), adminLn, st, log, s.adminChanged); err != nil && bgctx.Err() == nil {
			log.Error().Err(err).Msg("admin socket stopped")
		}
	}()
	go func() {
		defer s.bg.Done()
		s.collectBlobs(bgctx)
	}()
	if err := s.startLMTP(cfg, agent, log); err != nil {
		cancel()
		s.ln.Close()
		adminLn.Close()
		s.bg.Wait()
		st.Close()
		return nil, err
	}
	return s, nil
}

// Share is the admin.Sharer of "jmapd share", for a server and for admin
// commands that open the store themselves.
func Share(ctx context.Context, st store.Store, acct store.AccountID, grantee store.PrincipalID, mailbox string, r acl.Rights) error {
	err := methods.Share(ctx, st, acct, grantee, mailbox, r)
	if errors.Is(err, methods.ErrNoMailbox) || errors.Is(err, methods.ErrAmbiguousMailbox) {
		return admin.Usage(err)
	}
	return err
}

// URL is the base URL the server advertises.
func (s *Server) URL() string { return s.url }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Store is the server's store.
func (s *Server) Store() store.Store { return s.st }

// Registry is the server's JMAP registry.
func (s *Server) Registry() *jmap.Registry { return s.reg }

// Serve answers requests until Shutdown; it returns nil after a clean
// shutdown.
func (s *Server) Serve() error {
	var err error
	if s.http.TLSConfig != nil {
		err = s.http.ServeTLS(s.ln, "", "")
	} else {
		err = s.http.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, waits for those in flight (until ctx
// ends), stops background work and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	// Push connections end first: WebSocket ones are hijacked, so the
	// HTTP server would not wait for their requests in flight.
	s.push.Close()
	err := s.http.Shutdown(ctx)
	s.stop()
	s.webPush.Close()
	if s.lmtp != nil {
		_ = s.lmtp.Close()
	}
	s.bg.Wait()
	if cerr := s.st.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Server) authenticate(r *http.Request) (*jmap.Caller, time.Duration, error) {
	login, retry, err := s.auth.Login(r.Context(), r)
	if err != nil {
		return nil, retry, err
	}
	id := login.Principal
	if name, ok := s.usernames.Load(id); ok {
		return &jmap.Caller{Principal: id, Username: name.(string), Credential: login.Credential}, 0, nil
	}
	var p *store.Principal
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		var err error
		p, err = tx.Principals().Get(id)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	s.usernames.Store(id, p.Email)
	return &jmap.Caller{Principal: id, Username: p.Email, Credential: login.Credential}, 0, nil
}

// adminChanged runs after every admin command that changed something:
// cached logins and names are forgotten, so the change holds at once.
//
// A command may have revoked a credential (a new password, a revoked
// token, a removed user): push connections and PushSubscriptions made with
// it end too (RFC 8620 §7.2).
func (s *Server) adminChanged() {
	s.auth.Flush()
	s.usernames.Clear()
	ctx := context.Background()
	n, err := s.push.Revalidate(ctx, s.auth.Valid)
	if err != nil {
		s.log.Warn().Err(err).Msg("revalidate push connections")
	}
	m, err := s.webPush.Revalidate(ctx, s.auth.Valid)
	if err != nil {
		s.log.Warn().Err(err).Msg("revalidate push subscriptions")
	}
	if n+m > 0 {
		s.log.Info().Int("connections", n).Int("subscriptions", m).Msg("revoked credentials: push ended")
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		_, err := tx.State(store.SystemAccount, badger.PrincipalType)
		return err
	})
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
}

// collectBlobs removes unreferenced blobs past their grace period, hourly.
func (s *Server) collectBlobs(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, err := s.st.Blobs().Collect(ctx, now)
			if err != nil && ctx.Err() == nil {
				s.log.Error().Err(err).Msg("blob collection")
			} else if n > 0 {
				s.log.Info().Int("count", n).Msg("collected blobs")
			}
		}
	}
}
