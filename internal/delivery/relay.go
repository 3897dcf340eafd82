package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// send gives msg to the relay for rcpts and returns the reply for each.
// A failure of the whole session (connection, TLS, login, MAIL FROM, DATA)
// is every recipient's reply; a network error counts as a temporary 451.
func (a *Agent) send(ctx context.Context, from string, rcpts []string, msg []byte) map[string]Reply {
	r := a.relay
	out := make(map[string]Reply, len(rcpts))
	all := func(rep Reply) map[string]Reply {
		for _, rc := range rcpts {
			if _, done := out[rc]; !done {
				out[rc] = rep
			}
		}
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return all(tempReply("cannot connect to the relay", err))
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	// The deadline bounds every read and write; closing on cancel ends a
	// session stuck in between.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var c *smtp.Client
	if r.Insecure {
		c = smtp.NewClient(conn)
	} else {
		cfg := r.TLS
		if cfg == nil {
			host, _, _ := net.SplitHostPort(r.Addr)
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		c, err = smtp.NewClientStartTLS(conn, cfg)
		if err != nil {
			conn.Close()
			a.log.Error().Err(err).Msg("relay: STARTTLS failed; set relay.insecure only for a trusted relay")
			return all(fromError("STARTTLS with the relay failed", err))
		}
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = r.Timeout, r.Timeout
	if err := c.Hello(a.name); err != nil {
		return all(fromError("EHLO refused", err))
	}
	if r.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			a.log.Error().Err(err).Msg("relay: login failed")
			return all(fromError("login to the relay failed", err))
		}
	}
	if err := c.Mail(from, &smtp.MailOptions{Size: int64(len(msg))}); err != nil {
		return all(fromError("MAIL FROM refused", err))
	}
	var accepted []string
	for _, rc := range rcpts {
		if err := c.Rcpt(rc, nil); err != nil {
			out[rc] = fromError("RCPT TO refused", err)
			continue
		}
		accepted = append(accepted, rc)
	}
	if len(accepted) == 0 {
		_ = c.Quit()
		return out
	}
	w, err := c.Data()
	if err != nil {
		return all(fromError("DATA refused", err))
	}
	if _, err := w.Write(dotSafe(msg)); err != nil {
		return all(tempReply("sending the message failed", err))
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return all(fromError("message refused", err))
	}
	ok := Reply{Code: 250, Text: "2.0.0 relayed"}
	if resp != nil && resp.StatusText != "" {
		ok.Text = "2.0.0 " + oneLine(resp.StatusText)
	}
	_ = c.Quit()
	return all(ok)
}

// dotSafe ends msg with CRLF, as DATA needs.
func dotSafe(msg []byte) []byte {
	if bytes.HasSuffix(msg, []byte("\r\n")) {
		return msg
	}
	return append(bytes.TrimRight(msg, "\r\n"), '\r', '\n')
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func tempReply(what string, err error) Reply {
	return Reply{Code: 451, Text: "4.4.1 " + what + ": " + oneLine(err.Error())}
}

// fromError turns an SMTP client error into a reply; anything that is not
// an SMTP reply is a temporary failure.
func fromError(what string, err error) Reply {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		text := oneLine(se.Message)
		if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
			text = fmt.Sprintf("%d.%d.%d %s", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], text)
		}
		return Reply{Code: se.Code, Text: text}
	}
	return tempReply(what, err)
}
