package methods_test

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
)

// withLMTP turns the LMTP listener on, on a loopback port.
func withLMTP(c *config.Config) { c.LMTP.Listen = "127.0.0.1:0" }

// lmtpClient connects to the server's LMTP listener.
func lmtpClient(t *testing.T, srv *jmaptest.Server) *smtp.Client {
	t.Helper()
	conn, err := net.Dial("tcp", srv.LMTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	if err := c.Hello("mx.example.test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// lmtpSend runs one LMTP transaction; it returns the error of each RCPT
// (nil: accepted) and, per accepted recipient, the reply after DATA.
func lmtpSend(t *testing.T, c *smtp.Client, from string, rcpts []string, msg string) (rcptErr []error, data map[string]*smtp.SMTPError) {
	t.Helper()
	if err := c.Mail(from, nil); err != nil {
		t.Fatalf("MAIL FROM: %v", err)
	}
	accepted := 0
	for _, r := range rcpts {
		err := c.Rcpt(r, nil)
		rcptErr = append(rcptErr, err)
		if err == nil {
			accepted++
		}
	}
	if accepted == 0 {
		_ = c.Reset()
		return rcptErr, nil
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	ok, err := w.CloseWithLMTPResponse()
	data = map[string]*smtp.SMTPError{}
	for rcpt := range ok {
		data[rcpt] = nil
	}
	var le smtp.LMTPDataError
	if errors.As(err, &le) {
		for rcpt, e := range le {
			data[rcpt] = e
		}
	} else if err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	return rcptErr, data
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// Mail from the Internet, handed over by the MTA over LMTP (RFC 2033),
// lands in the Inboxes of users, of a group's members and of a shared
// mailbox, with the trace fields of a final delivery; unknown recipients
// are refused at RCPT, so the MTA bounces them, and each accepted
// recipient gets its own answer after the message.
func TestLMTP_DeliversInbound(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t, withLMTP)
	a := srv.NewUser(t, "a@example.test")
	b := srv.NewUser(t, "b@example.test")
	c := srv.NewUser(t, "c@example.test")
	srv.Admin(t, "group", "add", "team@example.test", "--member", b.Email, "--member", c.Email)
	srv.Admin(t, "shared", "add", "support@example.test")

	lc := lmtpClient(t, srv)
	msg := "From: Outside <someone@remote.test>\r\nTo: a@example.test, team@example.test\r\nSubject: From afar\r\n" +
		"Message-ID: <afar@remote.test>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nHello from the Internet.\r\n"
	rcpts := []string{"A@example.test", "nobody@example.test", "team@example.test", "support@example.test", "not an address"}
	rcptErr, data := lmtpSend(t, lc, "someone@remote.test", rcpts, msg)
	for i, want := range []int{0, 550, 0, 0, 501} {
		if got := smtpCode(rcptErr[i]); got != want {
			t.Errorf("RCPT %s: %v, want %d", rcpts[i], rcptErr[i], want)
		}
	}
	if len(data) != 3 {
		t.Errorf("per-recipient replies after DATA: %v, want 3", data)
	}
	for rcpt, st := range data {
		if st != nil {
			t.Errorf("%s: %v, want delivered", rcpt, st)
		}
	}
	for _, u := range []*jmaptest.Client{a, b, c} {
		got := inbox(t, u, "subject", "header:Delivered-To:asText", "header:Return-Path", "messageId", "header:Received")
		if len(got) != 1 {
			t.Fatalf("%s's Inbox: %v, want the message", u.Email, got)
		}
		m := got[0]
		if m["subject"] != "From afar" || !strings.EqualFold(str(m["header:Delivered-To:asText"]), u.Email) ||
			strings.TrimSpace(str(m["header:Return-Path"])) != "<someone@remote.test>" || !slices.Equal(strs(m["messageId"]), []string{"afar@remote.test"}) ||
			!strings.Contains(str(m["header:Received"]), " with LMTP ") {
			t.Errorf("%s got %v", u.Email, m)
		}
	}
	// The shared mailbox's account has it too: its members read it there.
	support := sharedAccount(t, srv, "support@example.test")
	srv.Admin(t, "share", "support@example.test", "--with", a.Email, "--rights", "read")
	q := a.One(t, "Email/query", map[string]any{"accountId": support})
	if len(strs(q["ids"])) != 1 {
		t.Errorf("the shared mailbox got %v, want the message", q["ids"])
	}

	// A second message on the same connection; a bounce has the null
	// sender.
	_, data = lmtpSend(t, lc, "", []string{a.Email}, "From: MAILER-DAEMON@remote.test\r\nSubject: Undeliverable\r\n\r\nIt bounced.\r\n")
	if st, ok := data[a.Email]; !ok || st != nil {
		t.Errorf("a bounce: %v", data)
	}
	found := false
	for _, m := range inbox(t, a, "subject") {
		found = found || m["subject"] == "Undeliverable"
	}
	if !found {
		t.Errorf("a's Inbox has no bounce: %v", inbox(t, a, "subject"))
	}
}

// Bad input: an oversized message is refused whole (552), a text that is
// not a message too (554), and nothing is delivered.
func TestLMTP_RefusesTooLarge(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t, withLMTP, func(c *config.Config) { c.LMTP.MaxSize = 10_000 })
	a := srv.NewUser(t, "a@example.test")
	lc := lmtpClient(t, srv)
	big := "From: x@remote.test\r\nSubject: Big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 1000)
	if err := lc.Mail("x@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := lc.Rcpt(a.Email, nil); err != nil {
		t.Fatal(err)
	}
	w, err := lc.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(big))
	_, err = w.CloseWithLMTPResponse()
	var le smtp.LMTPDataError
	if !errors.As(err, &le) || smtpCode(le[a.Email]) != 552 {
		t.Errorf("oversized message: %v, want 552", err)
	}
	if got := inbox(t, a); len(got) != 0 {
		t.Errorf("the oversized message was delivered: %v", got)
	}
	// Something with no header section is no message: refused for good.
	_, data := lmtpSend(t, lc, "x@remote.test", []string{a.Email}, "no header here, only text\r\n")
	if st := data[a.Email]; st == nil || st.Code != 554 {
		t.Errorf("a text that is not a message: %v, want 554", st)
	}
	if got := inbox(t, a); len(got) != 0 {
		t.Errorf("the non-message was delivered: %v", got)
	}
}

// RFC 8621 §8 and RFC 3834: mail from the Internet gets the vacation
// response, through the relay, once per sender; list mail does not.
func TestLMTP_VacationAnswersInbound(t *testing.T) {
	t.Parallel()
	rel := startRelay(t, "127.0.0.1:0")
	srv := jmaptest.Start(t, withLMTP, withRelay(portOf(t, rel.ln.Addr().String()), rel.caFile, time.Hour))
	b := srv.NewUser(t, "b@example.test")
	enableVacation(t, b, "Away")
	lc := lmtpClient(t, srv)
	for i, extra := range []string{"", "", "List-Id: <news.remote.test>\r\n"} {
		from := "friend@remote.test"
		if extra != "" {
			from = "news@remote.test"
		}
		msg := "From: " + from + "\r\nTo: b@example.test\r\nSubject: Hello " + string(rune('0'+i)) + "\r\n" + extra + "\r\nHi.\r\n"
		if _, data := lmtpSend(t, lc, from, []string{b.Email}, msg); data[b.Email] != nil {
			t.Fatalf("deliver: %v", data)
		}
	}
	waitFor(t, "the vacation reply at the relay", func() bool { return len(rel.messages()) >= 1 })
	time.Sleep(300 * time.Millisecond) // room for a wrong second reply
	got := rel.messages()
	if len(got) != 1 {
		t.Fatalf("the relay got %d messages, want one reply", len(got))
	}
	r := got[0]
	if r.from != "" || !slices.Equal(r.rcpts, []string{"friend@remote.test"}) ||
		!strings.Contains(string(r.data), "Auto-Submitted: auto-replied") || !strings.Contains(string(r.data), "Subject: Away") {
		t.Errorf("reply from %q to %v:\n%s", r.from, r.rcpts, r.data)
	}
}
