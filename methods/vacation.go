package methods

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmapd/jmapd/internal/delivery"
	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// vacationID is the id of the one VacationResponse of an account (RFC 8621
// §8).
const vacationID = "singleton"

// vacationType is the VacationResponse data type (RFC 8621 §8).
var vacationType = &jmap.Type{
	Name:       "VacationResponse",
	Capability: CapVacation,
	Properties: []string{"id", "isEnabled", "fromDate", "toDate", "subject", "textBody", "htmlBody"},
	Defaults: func() map[string]any {
		return map[string]any{"isEnabled": false, "fromDate": nil, "toDate": nil, "subject": nil,
			"textBody": nil, "htmlBody": nil}
	},
	Validate: validateVacation,
}

func registerVacation(r *jmap.Registry, accts *Accounts) {
	r.AddCapability(CapVacation, struct{}{})
	accts.AddCapability(CapVacation, func(store.AccountID) any { return struct{}{} })
	accts.AddProvisioner(provisionVacation)
	r.Register(vacationType, "get")
	r.Handle("VacationResponse/set", CapVacation, vacationSet)
}

// provisionVacation creates the account's VacationResponse, disabled.
func provisionVacation(tx store.Tx, acct store.AccountID) error {
	m := vacationType.Defaults()
	m["id"] = vacationID
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tx.Create(acct, "VacationResponse", vacationID, b)
}

func validateVacation(ctx context.Context, tx store.Tx, acct store.AccountID, obj, old map[string]any) *jmap.SetError {
	if _, ok := obj["isEnabled"].(bool); !ok {
		return jmap.InvalidProperties("isEnabled must be a boolean", "isEnabled")
	}
	for _, p := range []string{"fromDate", "toDate"} {
		if v := obj[p]; v != nil {
			s, _ := v.(string)
			if _, ok := parseUTCDate(s); !ok {
				return jmap.InvalidProperties(p+" must be a UTCDate or null", p)
			}
		}
	}
	for _, p := range []string{"subject", "textBody", "htmlBody"} {
		if v := obj[p]; v != nil {
			if _, ok := v.(string); !ok {
				return jmap.InvalidProperties(p+" must be a string or null", p)
			}
		}
	}
	return nil
}

// vacationSet is the standard /set on the singleton: it can be updated,
// never created or destroyed (RFC 8621 §8.2, RFC 8620 §5.3 "singleton").
func vacationSet(ctx context.Context, c *jmap.Call) (any, error) {
	var args jmap.SetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	refused := map[string]*jmap.SetError{}
	for _, cid := range args.Create.Keys {
		refused[cid] = jmap.NewSetError(jmap.SetSingleton, "there is only one VacationResponse")
	}
	var gone map[string]*jmap.SetError
	if args.Destroy != nil {
		gone = map[string]*jmap.SetError{}
		for _, id := range *args.Destroy {
			gone[id] = jmap.NewSetError(jmap.SetSingleton, "the VacationResponse cannot be destroyed")
		}
	}
	for id := range args.Update {
		if id != vacationID {
			return nil, jmap.InvalidArguments("the only VacationResponse is %q", vacationID)
		}
	}
	args.Create, args.Destroy = jmap.OrderedObjects{}, nil
	resp, err := vacationType.SetWith(ctx, c, &args)
	if err != nil {
		return nil, err
	}
	if len(refused) > 0 {
		resp.NotCreated = refused
	}
	if len(gone) > 0 {
		resp.NotDestroyed = gone
	}
	return resp, nil
}

func vacationSentKey(acct store.AccountID, sender string) string {
	return "vacsent\x00" + string(acct) + "\x00" + strings.ToLower(sender)
}

// autoReplyWorthy reports whether a message may get an automatic reply
// (RFC 3834 §2): not one sent automatically itself, not list mail, not a
// bounce.
func autoReplyWorthy(msg *mime.Message, from string) bool {
	if from == "" {
		return false // a bounce or another auto-reply: null return path
	}
	local, _, _ := strings.Cut(strings.ToLower(from), "@")
	if local == "mailer-daemon" || local == "postmaster" || strings.HasPrefix(local, "owner-") ||
		strings.HasSuffix(local, "-request") || strings.HasPrefix(local, "bounce") {
		return false
	}
	for _, h := range msg.Headers {
		name := strings.ToLower(h.Name)
		if strings.HasPrefix(name, "list-") {
			return false
		}
	}
	for _, v := range mime.Values(msg.Headers, "Auto-Submitted") {
		if !strings.EqualFold(strings.TrimSpace(mime.AsText(v)), "no") {
			return false
		}
	}
	for _, v := range mime.Values(msg.Headers, "Precedence") {
		switch strings.ToLower(strings.TrimSpace(mime.AsText(v))) {
		case "bulk", "list", "junk":
			return false
		}
	}
	return true
}

// vacationRecord returns the stored VacationResponse of acct and whether
// it may be on; most users are not away, and a delivery reads one member
// of the record to know.
func vacationRecord(tx store.Tx, acct store.AccountID) ([]byte, bool, error) {
	b, err := tx.Get(acct, "VacationResponse", vacationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if on, ok := jmap.Member(b, "isEnabled"); ok && string(on) == "false" {
		return b, false, nil
	}
	return b, true, nil
}

// vacationReply queues the vacation response of acct to the sender of a
// message delivered to it, when the response is on, the message merits
// one, and this sender did not get one within the period.
func (s *sender) vacationReply(tx store.Tx, acct store.AccountID, msg *mime.Message, from string, now time.Time) error {
	b, on, err := vacationRecord(tx, acct)
	if err != nil || !on {
		return err
	}
	var v struct {
		IsEnabled bool    `json:"isEnabled"`
		FromDate  *string `json:"fromDate"`
		ToDate    *string `json:"toDate"`
		Subject   *string `json:"subject"`
		TextBody  *string `json:"textBody"`
		HTMLBody  *string `json:"htmlBody"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if !v.IsEnabled || !autoReplyWorthy(msg, from) {
		return nil
	}
	if v.FromDate != nil {
		if t, ok := parseUTCDate(*v.FromDate); ok && now.Before(t) {
			return nil
		}
	}
	if v.ToDate != nil {
		if t, ok := parseUTCDate(*v.ToDate); ok && !now.Before(t) {
			return nil
		}
	}
	owner, err := tx.Principals().Get(store.PrincipalID(acct))
	if err != nil {
		return nil // no owner to answer as
	}
	if strings.EqualFold(owner.Email, from) {
		return nil // never to oneself
	}
	key := vacationSentKey(acct, from)
	last, err := tx.GetMeta(key)
	if err != nil {
		return err
	}
	if last != nil {
		if n, err := strconv.ParseInt(string(last), 10, 64); err == nil && now.Sub(time.Unix(n, 0)) < s.opt.VacationPeriod {
			return nil
		}
	}
	if err := tx.PutMeta(key, []byte(strconv.FormatInt(now.Unix(), 10))); err != nil {
		return err
	}
	reply := buildVacationReply(owner, from, msg, v.Subject, v.TextBody, v.HTMLBody, now, s.agent.HostName())
	return s.agent.Enqueue(tx, &delivery.Job{Account: acct, Rcpts: []string{from}, Raw: s.agent.Sign(reply), NotBefore: now})
}

// buildVacationReply writes the automatic reply (RFC 3834 §3): from the
// account's owner to the sender, marked Auto-Submitted: auto-replied, in
// the thread of the message it answers.
func buildVacationReply(owner *store.Principal, to string, msg *mime.Message, subject, text, html *string, now time.Time, host string) []byte {
	var b bytes.Buffer
	name := map[string]any{"name": owner.Name, "email": owner.Email}
	fromField, _ := formatAddress(name)
	fmt.Fprintf(&b, "From: %s\r\n", fromField)
	fmt.Fprintf(&b, "To: <%s>\r\n", to)
	subj := ""
	if subject != nil {
		subj = *subject
	} else {
		orig := ""
		if vs := mime.Values(msg.Headers, "Subject"); len(vs) > 0 {
			orig = mime.AsText(vs[len(vs)-1])
		}
		subj = "Auto: " + orig // RFC 3834 §3.1.5
	}
	fmt.Fprintf(&b, "Subject: %s\r\n", encodeText(strings.Join(strings.Fields(subj), " ")))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", randomToken(12), host)
	if vs := mime.Values(msg.Headers, "Message-ID"); len(vs) > 0 {
		if ids := mime.AsMessageIDs(vs[len(vs)-1]); len(ids) > 0 {
			// RFC 3834 §3.1.4.
			fmt.Fprintf(&b, "In-Reply-To: <%s>\r\n", ids[0])
			var refs []string
			if rv := mime.Values(msg.Headers, "References"); len(rv) > 0 {
				refs = mime.AsMessageIDs(rv[len(rv)-1])
			}
			refs = append(refs, ids[0])
			for i := range refs {
				refs[i] = "<" + refs[i] + ">"
			}
			fmt.Fprintf(&b, "References: %s\r\n", strings.Join(refs, "\r\n "))
		}
	}
	b.WriteString("Auto-Submitted: auto-replied\r\n") // RFC 3834 §5
	b.WriteString("MIME-Version: 1.0\r\n")
	body := "I am away and will read your message when I return."
	switch {
	case text != nil:
		body = *text
	case html != nil:
		body = mime.HTMLToText(*html)
	}
	if html != nil {
		bnd := "alt-" + randomToken(12)
		fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", bnd)
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n", bnd, base64Lines(body))
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n", bnd, base64Lines(*html))
		fmt.Fprintf(&b, "--%s--\r\n", bnd)
		return b.Bytes()
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	b.WriteString(base64Lines(body))
	b.WriteString("\r\n")
	return b.Bytes()
}

// base64Lines encodes s in base64 lines of 76 characters.
func base64Lines(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	return b.String()
}
