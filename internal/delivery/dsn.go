package delivery

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// newBoundary returns a random MIME boundary or Message-ID part.
func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// DSN builds the delivery status notification (RFC 3464) that tells from
// which recipients of the message raw (queued as id) failed and why: a
// multipart/report with a human-readable part, the message/delivery-status
// part, and the original header as text/rfc822-headers.
func (a *Agent) DSN(from, id string, raw []byte, failed []Failure, now time.Time) []byte {
	bnd := "dsn-" + newToken()
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", a.name)
	fmt.Fprintf(&b, "To: <%s>\r\n", from)
	b.WriteString("Subject: Undelivered Mail Returned to Sender\r\n")
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", newToken(), a.name)
	b.WriteString("Auto-Submitted: auto-replied\r\n") // RFC 3834 §5
	b.WriteString("MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", bnd)
	b.WriteString("This is a MIME-encapsulated delivery status notification.\r\n")

	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", bnd)
	b.WriteString("Your message could not be delivered to these recipients:\r\n\r\n")
	for _, f := range failed {
		fmt.Fprintf(&b, "  <%s>: %s\r\n", f.Rcpt, f.Reply)
	}

	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", bnd)
	// Per-message fields (RFC 3464 §2.2).
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\r\n", a.name)
	fmt.Fprintf(&b, "Original-Envelope-Id: %s\r\n", id)
	fmt.Fprintf(&b, "Arrival-Date: %s\r\n", now.Format(time.RFC1123Z))
	// Per-recipient fields (RFC 3464 §2.3).
	for _, f := range failed {
		fmt.Fprintf(&b, "\r\nFinal-Recipient: rfc822; %s\r\n", f.Rcpt)
		b.WriteString("Action: failed\r\n")
		fmt.Fprintf(&b, "Status: %s\r\n", f.Reply.enhanced())
		fmt.Fprintf(&b, "Diagnostic-Code: smtp; %s\r\n", f.Reply)
		fmt.Fprintf(&b, "Last-Attempt-Date: %s\r\n", now.Format(time.RFC1123Z))
	}

	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", bnd)
	end, _ := headerEnd(raw)
	b.Write(raw[:end])
	fmt.Fprintf(&b, "\r\n--%s--\r\n", bnd)
	return b.Bytes()
}
