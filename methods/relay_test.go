package methods_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/internal/delivery"
	"github.com/jmapd/jmapd/jmaptest"
)

// relayed is one message a test relay took.
type relayed struct {
	from  string
	rcpts []string
	data  []byte
	user  string
	tls   bool
}

// testRelay is a real SMTP server on loopback standing in for the relay:
// STARTTLS with its own certificate, AUTH PLAIN, and per-recipient
// answers chosen by the test.
type testRelay struct {
	srv    *smtp.Server
	ln     net.Listener
	caFile string
	mu     sync.Mutex
	got    []relayed
	// refuse maps a recipient to the SMTP error it gets.
	refuse map[string]*smtp.SMTPError
}

func (r *testRelay) messages() []relayed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayed(nil), r.got...)
}

type relaySession struct {
	r    *testRelay
	conn *smtp.Conn
	msg  relayed
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "relayuser" || pass != "relaypass" {
			return errors.New("bad credentials")
		}
		s.msg.user = user
		return nil
	}), nil
}
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.msg.user == "" {
		return smtp.ErrAuthRequired
	}
	_, s.msg.tls = s.conn.TLSConnectionState()
	s.msg.from = from
	return nil
}
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	e := s.r.refuse[to]
	s.r.mu.Unlock()
	if e != nil {
		return e
	}
	s.msg.rcpts = append(s.msg.rcpts, to)
	return nil
}
func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = b
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.msg)
	s.r.mu.Unlock()
	return nil
}
func (s *relaySession) Reset()        { s.msg = relayed{user: s.msg.user} }
func (s *relaySession) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and writes it as the CA
// file the server is told to trust.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

// startRelay runs a test relay on addr ("127.0.0.1:0" for any port) until
// the test ends.
func startRelay(t *testing.T, addr string) *testRelay {
	t.Helper()
	cert, ca := selfSigned(t)
	r := &testRelay{caFile: ca, refuse: map[string]*smtp.SMTPError{}}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r, conn: c}, nil
	}))
	r.srv.Domain = "relay.test"
	r.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	r.srv.ReadTimeout, r.srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r.ln = ln
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { r.srv.Close() })
	return r
}

// withRelay points the server at a relay on port with the test login.
func withRelay(port int, caFile string, retryFor time.Duration) jmaptest.Option {
	return func(c *config.Config) {
		c.Relay = config.Relay{Host: "127.0.0.1", Port: port, Username: "relayuser", Password: "relaypass",
			CAFile: caFile, HelloName: "mx.example.test",
			Timeout:    config.Duration{Duration: 5 * time.Second},
			RetryFor:   config.Duration{Duration: retryFor},
			RetryFirst: config.Duration{Duration: 50 * time.Millisecond}}
	}
}

func portOf(t *testing.T, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := portOf(t, ln.Addr().String())
	ln.Close()
	return p
}

func statusOf(t *testing.T, c *jmaptest.Client, sub, rcpt string) map[string]any {
	t.Helper()
	return member(getSubmission(t, c, sub)["deliveryStatus"], rcpt)
}

func TestRelay_AcceptedMessageIsSignedAndLocalCopyDelivered(t *testing.T) {
	t.Parallel()
	rel := startRelay(t, "127.0.0.1:0")
	srv := jmaptest.Start(t, withRelay(portOf(t, rel.ln.Addr().String()), rel.caFile, time.Hour))
	name, txt, err := delivery.GenerateKey(delivery.DKIMDir(srv.Dir), "example.test", "s1", "ed25519")
	if err != nil {
		t.Fatal(err)
	}
	a := srv.NewUser(t, "a@example.test")
	b := srv.NewUser(t, "b@example.test")
	s := send(t, a, map[string]any{"to": to("x@remote.test", b.Email), "bcc": to("y@remote.test")})
	id := str(s["id"])
	if st := member(s["deliveryStatus"], "x@remote.test"); st["delivered"] != "queued" {
		t.Errorf("external status at once: %v", st)
	}
	if st := member(s["deliveryStatus"], b.Email); st["delivered"] != "yes" {
		t.Errorf("local status: %v", st)
	}
	waitFor(t, "the relay", func() bool { return statusOf(t, a, id, "x@remote.test")["delivered"] == "unknown" })
	if st := statusOf(t, a, id, "y@remote.test"); st["delivered"] != "unknown" || !strings.HasPrefix(str(st["smtpReply"]), "250 ") {
		t.Errorf("relayed status %v", st)
	}
	got := rel.messages()
	if len(got) != 1 {
		t.Fatalf("relay got %d messages", len(got))
	}
	m := got[0]
	if m.from != a.Email || len(m.rcpts) != 2 || !m.tls || m.user != "relayuser" {
		t.Errorf("relay saw from %q rcpts %v tls %v user %q", m.from, m.rcpts, m.tls, m.user)
	}
	if bytes.Contains(m.data, []byte("y@remote.test")) {
		t.Errorf("the Bcc reached the relay")
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.data), &dkim.VerifyOptions{
		LookupTXT: func(d string) ([]string, error) {
			if d != name {
				return nil, errors.New("no such record")
			}
			return []string{txt}, nil
		}})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.test" {
		t.Errorf("DKIM: %v %+v", err, vs)
	}
	if len(inbox(t, b)) != 1 {
		t.Errorf("B did not get the local copy")
	}
}

func TestRelay_RefusedRecipientGetsDSN(t *testing.T) {
	t.Parallel()
	rel := startRelay(t, "127.0.0.1:0")
	rel.refuse["nobody@remote.test"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	srv := jmaptest.Start(t, withRelay(portOf(t, rel.ln.Addr().String()), rel.caFile, time.Hour))
	a := srv.NewUser(t, "a@example.test")
	id := str(send(t, a, map[string]any{"to": to("nobody@remote.test", "x@remote.test")})["id"])
	waitFor(t, "the refusal", func() bool { return statusOf(t, a, id, "nobody@remote.test")["delivered"] == "no" })
	st := statusOf(t, a, id, "nobody@remote.test")
	if st["smtpReply"] != "550 5.1.1 no such user" {
		t.Errorf("refused status %v", st)
	}
	if st := statusOf(t, a, id, "x@remote.test"); st["delivered"] != "unknown" {
		t.Errorf("accepted recipient %v", st)
	}
	dsns := strs(getSubmission(t, a, id)["dsnBlobIds"])
	if len(dsns) != 1 {
		t.Fatalf("dsnBlobIds %v", dsns)
	}
	d := string(downloadBlob(t, a, dsns[0]))
	if !strings.Contains(d, "report-type=delivery-status") || !strings.Contains(d, "Final-Recipient: rfc822; nobody@remote.test") {
		t.Errorf("DSN:\n%s", d)
	}
	got := inbox(t, a, "subject", "blobId")
	if len(got) != 1 || got[0]["blobId"] != dsns[0] {
		t.Errorf("A's Inbox: %v", got)
	}
}

func TestRelay_DownRetriesThenDSN(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t, withRelay(freePort(t), "", 400*time.Millisecond))
	a := srv.NewUser(t, "a@example.test")
	id := str(send(t, a, map[string]any{"to": to("x@remote.test")})["id"])
	waitFor(t, "the bounce", func() bool { return statusOf(t, a, id, "x@remote.test")["delivered"] == "no" })
	if st := statusOf(t, a, id, "x@remote.test"); !strings.HasPrefix(str(st["smtpReply"]), "451 4.4.1 ") {
		t.Errorf("status %v", st)
	}
	if len(strs(getSubmission(t, a, id)["dsnBlobIds"])) != 1 {
		t.Errorf("no DSN")
	}
	if got := inbox(t, a, "subject"); len(got) != 1 || got[0]["subject"] != "Undelivered Mail Returned to Sender" {
		t.Errorf("A's Inbox %v", got)
	}
}

func TestRelay_QueueSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := freePort(t)
	_, ca := selfSigned(t)
	var a jmaptest.Client
	var id string
	t.Run("relay down", func(t *testing.T) {
		srv := jmaptest.Start(t, withRelay(port, ca, time.Hour), func(c *config.Config) { c.Data = dir })
		a = *srv.NewUser(t, "a@example.test")
		id = str(send(t, &a, map[string]any{"to": to("x@remote.test")})["id"])
		waitFor(t, "a failed attempt", func() bool {
			return strings.HasPrefix(str(statusOf(t, &a, id, "x@remote.test")["smtpReply"]), "451 ")
		})
	})
	rel := startRelay(t, "127.0.0.1:"+strconv.Itoa(port))
	srv := jmaptest.Start(t, withRelay(port, rel.caFile, time.Hour), func(c *config.Config) { c.Data = dir })
	c := jmaptest.Attach(&jmaptest.Client{Email: a.Email, Password: a.Password, Account: a.Account}, srv)
	waitFor(t, "the relay after restart", func() bool { return statusOf(t, c, id, "x@remote.test")["delivered"] == "unknown" })
	if got := rel.messages(); len(got) != 1 || got[0].rcpts[0] != "x@remote.test" {
		t.Errorf("relay got %v", got)
	}
}

func TestRelay_StartTLSRequired(t *testing.T) {
	t.Parallel()
	// A relay without STARTTLS never gets the message unless insecure.
	rel := startRelay(t, "127.0.0.1:0")
	rel.srv.TLSConfig = nil
	srv := jmaptest.Start(t, withRelay(portOf(t, rel.ln.Addr().String()), "", 300*time.Millisecond))
	a := srv.NewUser(t, "a@example.test")
	id := str(send(t, a, map[string]any{"to": to("x@remote.test")})["id"])
	waitFor(t, "the bounce", func() bool { return statusOf(t, a, id, "x@remote.test")["delivered"] == "no" })
	if n := len(rel.messages()); n != 0 {
		t.Errorf("relay got %d messages in clear text", n)
	}
}

// A relay that answers garbage never blocks the API, and the message stays
// queued until the retry window ends in a DSN.
func TestRelay_GarbageAnswerIsRetried(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("HELLO? \x00\xff not smtp\r\n"))
			c.Close()
		}
	}()
	srv := jmaptest.Start(t, withRelay(portOf(t, ln.Addr().String()), "", 500*time.Millisecond))
	a := srv.NewUser(t, "a@example.test")
	id := str(send(t, a, map[string]any{"to": to("x@remote.test")})["id"])
	start := time.Now()
	if st := statusOf(t, a, id, "x@remote.test"); st["delivered"] != "queued" && st["delivered"] != "no" {
		t.Errorf("status %v", st)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("EmailSubmission/get took %v while the relay misbehaves", d)
	}
	waitFor(t, "the bounce", func() bool { return statusOf(t, a, id, "x@remote.test")["delivered"] == "no" })
	if len(strs(getSubmission(t, a, id)["dsnBlobIds"])) != 1 {
		t.Errorf("no DSN")
	}
}
