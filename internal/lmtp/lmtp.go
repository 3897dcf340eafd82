// Package lmtp receives mail for this server's principals over LMTP (RFC
// 2033), from the mail transfer agent that takes the domain's mail from
// the Internet. Each accepted recipient's copy goes through the same local
// delivery as mail between users (internal/delivery): groups expand to
// their members, a shared mailbox's address to its account, and a
// vacation response answers when one is due. LMTP answers per recipient
// after the message (RFC 2033 §4.2), so a delivery that fails for one
// recipient is retried by the MTA for that recipient alone.
package lmtp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/delivery"
	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/store"
)

// Options configures a Server.
type Options struct {
	// Store holds the principals and the mail; required.
	Store store.Store
	// Agent delivers the copies; required, with its Host set.
	Agent *delivery.Agent
	// HostName is the name in the greeting (default: the agent's).
	HostName string
	// MaxSize is the largest message accepted, in octets; required.
	MaxSize int64
	// MaxRecipients is the most recipients of one message; required.
	MaxRecipients int
	// Log receives a line per delivered message and per failure.
	Log zerolog.Logger
}

// Server is an LMTP server.
type Server struct {
	opt Options
	srv *smtp.Server
}

// New returns a server; Serve starts it.
func New(opt Options) *Server {
	if opt.HostName == "" {
		opt.HostName = opt.Agent.HostName()
	}
	s := &Server{opt: opt}
	srv := smtp.NewServer(backend{s})
	srv.LMTP = true
	srv.Domain = opt.HostName
	srv.MaxMessageBytes = opt.MaxSize
	srv.MaxRecipients = opt.MaxRecipients
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = time.Minute
	srv.MaxLineLength = 4000 // RFC 5322 §2.1.1 allows 998; be lenient
	srv.ErrorLog = logger{opt.Log}
	s.srv = srv
	return s
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting and ends every connection.
func (s *Server) Close() error { return s.srv.Close() }

// logger passes go-smtp's complaints (broken connections, mostly) to the
// log.
type logger struct{ log zerolog.Logger }

func (l logger) Printf(format string, v ...any) { l.log.Debug().Msgf("lmtp: "+format, v...) }
func (l logger) Println(v ...any) {
	l.log.Debug().Msg("lmtp: " + strings.TrimSpace(fmt.Sprintln(v...)))
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, rcpts: map[string][]delivery.Target{}}, nil
}

// session is one LMTP transaction at a time (MAIL, RCPT..., DATA).
type session struct {
	s     *Server
	from  string
	rcpts map[string][]delivery.Target
	order []string // RCPT arguments as the client gave them, duplicates included
}

func (ss *session) Reset() {
	ss.from, ss.rcpts, ss.order = "", map[string][]delivery.Target{}, nil
}

func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	// The null reverse-path of bounces and auto-replies is "".
	if from != "" {
		addr, err := delivery.ParseAddress(from)
		if err != nil {
			return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "bad sender address"}
		}
		from = addr
	}
	ss.Reset()
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	addr, err := delivery.ParseAddress(to)
	if err != nil {
		return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "bad recipient address"}
	}
	addr = strings.ToLower(addr)
	// Each answer after DATA names the recipient as the client wrote it.
	if _, ok := ss.rcpts[addr]; !ok {
		var targets []delivery.Target
		var local bool
		err := ss.s.opt.Store.View(context.Background(), func(tx store.Tx) error {
			var err error
			targets, local, err = ss.s.opt.Agent.Resolve(tx, addr)
			return err
		})
		if err != nil {
			ss.s.opt.Log.Error().Err(err).Str("rcpt", addr).Msg("lmtp: resolve recipient")
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		if !local {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
		}
		ss.rcpts[addr] = targets
	}
	ss.order = append(ss.order, to)
	return nil
}

// Data is SMTP's DATA; an LMTP server always calls LMTPData.
func (ss *session) Data(r io.Reader) error {
	return ss.LMTPData(r, nil)
}

// LMTPData delivers the message to every recipient in one transaction, and
// answers each recipient with its outcome.
func (ss *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		// Too large, or the connection broke: go-smtp answers.
		return err
	}
	raw = crlf(raw)
	id := newID()
	if len(ss.rcpts) == 0 {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "no valid recipients"}
	}
	ctx := context.Background()
	a := ss.s.opt.Agent
	copies, err := a.PrepareReceived(ctx, store.SystemAccount, "LMTP", ss.from, id, raw, nil, ss.rcpts)
	if errors.Is(err, mime.ErrNotMessage) {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "the message cannot be parsed"}
	}
	if err == nil {
		_, err = ss.s.opt.Store.Update(ctx, func(tx store.Tx) error {
			_, err := a.DeliverLocal(tx, copies, ss.from)
			return err
		})
	}
	if err != nil {
		ss.s.opt.Log.Error().Err(err).Str("id", id).Msg("lmtp: deliver")
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "delivery failed, try again later"}
	}
	ss.s.opt.Log.Info().Str("id", id).Str("from", ss.from).Strs("rcpts", ss.order).Int("size", len(raw)).Msg("lmtp: delivered")
	if status != nil {
		for _, rcpt := range ss.order {
			status.SetStatus(rcpt, nil)
		}
	}
	return nil
}

// crlf makes every line end in CRLF, as stored messages do: MTAs send
// LMTP data with CRLF already, but a bare LF slips through some.
func crlf(raw []byte) []byte {
	if !bytes.Contains(raw, []byte("\n")) || bytes.Count(raw, []byte("\r\n")) == bytes.Count(raw, []byte("\n")) {
		return raw
	}
	var b bytes.Buffer
	b.Grow(len(raw) + len(raw)/40)
	for line := range bytes.Lines(raw) {
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// newID names one received message in logs and in its Received field.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
