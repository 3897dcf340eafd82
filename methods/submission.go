package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmapd/jmapd/internal/delivery"
	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// SendOptions configures sending: the delivery agent and the limits of
// the submission capability.
type SendOptions struct {
	// Agent delivers and queues mail; required.
	Agent *delivery.Agent
	// MaxDelayedSend is the longest FUTURERELEASE hold (0: none).
	MaxDelayedSend time.Duration
	// MaxRecipients bounds the envelope recipients of one submission.
	MaxRecipients int
	// MaxSize is the largest message that may be sent, in octets.
	MaxSize int64
	// MaxPerHour is how many submissions an account may make in an hour.
	MaxPerHour int
	// VacationPeriod is how long a vacation response waits before it
	// answers the same sender again.
	VacationPeriod time.Duration
	// SharedToAnyone lets mail from a shared account go to any recipient,
	// not only to principals who can reach the account.
	SharedToAnyone bool
}

// submissionCapability is the account-level object of CapSubmission
// (RFC 8621 §1.3.2).
type submissionCapability struct {
	MaxDelayedSend       int64               `json:"maxDelayedSend"`
	SubmissionExtensions map[string][]string `json:"submissionExtensions"`
}

// sender serves Identity-checked sending for one server.
type sender struct {
	accts *Accounts
	agent *delivery.Agent
	opt   SendOptions
	typ   *jmap.Type
}

// submissionProps are the properties of an EmailSubmission (RFC 8621 §7).
var submissionProps = []string{"id", "identityId", "emailId", "threadId", "envelope", "sendAt", "undoStatus",
	"deliveryStatus", "dsnBlobIds", "mdnBlobIds"}

func registerSubmission(r *jmap.Registry, accts *Accounts, opt SendOptions) *sender {
	s := &sender{accts: accts, agent: opt.Agent, opt: opt}
	s.typ = &jmap.Type{
		Name:       "EmailSubmission",
		Capability: CapSubmission,
		Properties: submissionProps,
		ServerSet:  []string{"threadId", "sendAt", "deliveryStatus", "dsnBlobIds", "mdnBlobIds"},
		Immutable:  []string{"identityId", "emailId", "envelope"},
		Validate:   s.validateUpdate,
		OnDestroy:  destroySubmission,
		Filter:     submissionFilter,
		Sort: map[string]func(a, b map[string]any, coll string) int{
			"emailId": func(a, b map[string]any, _ string) int { return jmap.CompareIDs(str(a["emailId"]), str(b["emailId"])) },
			"threadId": func(a, b map[string]any, _ string) int {
				return jmap.CompareIDs(str(a["threadId"]), str(b["threadId"]))
			},
			// RFC 8621 §7.3 names the sort "sentAt"; it is the sendAt
			// property.
			"sentAt": func(a, b map[string]any, _ string) int { return strings.Compare(str(a["sendAt"]), str(b["sendAt"])) },
		},
	}
	r.AddCapability(CapSubmission, struct{}{})
	// In someone else's account only for those who may send as it.
	accts.AddCapabilityFor(CapSubmission, func(i AccountInfo) (any, bool) {
		if !i.Owner && !(i.Rights.Submit && i.Rights.Share) {
			return nil, false
		}
		ext := map[string][]string{"SIZE": {strconv.FormatInt(opt.MaxSize, 10)}, "8BITMIME": {}, "SMTPUTF8": {}}
		if opt.MaxDelayedSend > 0 {
			// RFC 4865 §3: the longest interval and the latest date.
			ext["FUTURERELEASE"] = []string{strconv.FormatInt(int64(opt.MaxDelayedSend/time.Second), 10),
				utcDate(time.Now().Add(opt.MaxDelayedSend))}
		}
		return submissionCapability{MaxDelayedSend: int64(opt.MaxDelayedSend / time.Second), SubmissionExtensions: ext}, true
	})
	registerIdentity(r, accts)
	r.Register(s.typ, "get", "changes", "query", "queryChanges")
	r.Handle("EmailSubmission/set", CapSubmission, s.set)
	opt.Agent.SetHost(&mailHost{s: s})
	return s
}

// submissionFilter compiles an EmailSubmission FilterCondition (RFC 8621
// §7.3).
func submissionFilter(cond map[string]any) (func(map[string]any) bool, error) {
	var tests []func(map[string]any) bool
	bad := func(k, want string) error {
		return jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("%s must be %s", k, want))
	}
	for k, v := range cond {
		switch k {
		case "identityIds", "emailIds", "threadIds":
			list, ok := v.([]any)
			if !ok {
				return nil, bad(k, "a list of ids")
			}
			set := map[string]bool{}
			for _, x := range list {
				s, ok := x.(string)
				if !ok {
					return nil, bad(k, "a list of ids")
				}
				set[s] = true
			}
			prop := strings.TrimSuffix(k, "s")
			tests = append(tests, func(o map[string]any) bool { return set[str(o[prop])] })
		case "undoStatus":
			s, ok := v.(string)
			if !ok {
				return nil, bad(k, "a string")
			}
			tests = append(tests, func(o map[string]any) bool { return o["undoStatus"] == s })
		case "before", "after":
			s, _ := v.(string)
			t, ok := parseUTCDate(s)
			if !ok {
				return nil, bad(k, "a UTCDate")
			}
			before := k == "before"
			tests = append(tests, func(o map[string]any) bool {
				at, ok := parseUTCDate(str(o["sendAt"]))
				if !ok {
					return false
				}
				if before {
					return at.Before(t)
				}
				return !at.Before(t)
			})
		default:
			return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("unknown condition %q", k))
		}
	}
	return jmap.AllOf(tests), nil
}

// envelopeAddr is an Address of an Envelope (RFC 8621 §7).
type envelopeAddr struct {
	Email      string             `json:"email"`
	Parameters map[string]*string `json:"parameters"`
}

// envelope is an Envelope (RFC 8621 §7).
type envelope struct {
	MailFrom envelopeAddr   `json:"mailFrom"`
	RcptTo   []envelopeAddr `json:"rcptTo"`
}

// decodeAddr reads an Address object strictly.
func decodeAddr(v any) (envelopeAddr, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return envelopeAddr{}, false
	}
	var a envelopeAddr
	for k, x := range m {
		switch k {
		case "email":
			s, ok := x.(string)
			if !ok {
				return a, false
			}
			a.Email = s
		case "parameters":
			if x == nil {
				continue
			}
			pm, ok := x.(map[string]any)
			if !ok {
				return a, false
			}
			a.Parameters = map[string]*string{}
			for pk, pv := range pm {
				switch pv := pv.(type) {
				case nil:
					a.Parameters[strings.ToUpper(pk)] = nil
				case string:
					a.Parameters[strings.ToUpper(pk)] = &pv
				default:
					return a, false
				}
			}
		default:
			return a, false
		}
	}
	_, hasEmail := m["email"]
	return a, hasEmail
}

// decodeEnvelope reads an Envelope given by the client.
func decodeEnvelope(v any) (*envelope, *jmap.SetError) {
	bad := jmap.InvalidProperties("envelope must be an Envelope object: mailFrom and rcptTo Addresses", "envelope")
	m, ok := v.(map[string]any)
	if !ok {
		return nil, bad
	}
	for k := range m {
		if k != "mailFrom" && k != "rcptTo" {
			return nil, bad
		}
	}
	var env envelope
	if env.MailFrom, ok = decodeAddr(m["mailFrom"]); !ok {
		return nil, bad
	}
	list, ok := m["rcptTo"].([]any)
	if !ok {
		return nil, bad
	}
	for _, x := range list {
		a, ok := decodeAddr(x)
		if !ok {
			return nil, bad
		}
		env.RcptTo = append(env.RcptTo, a)
	}
	return &env, nil
}

// holdUntil reads the FUTURERELEASE parameters of mailFrom (RFC 4865 §3):
// HOLDFOR (seconds) or HOLDUNTIL (RFC 3339 date-time). It also checks that
// every other parameter is one the server supports.
func (s *sender) holdUntil(a envelopeAddr, now time.Time) (time.Time, *jmap.SetError) {
	bad := func(desc string) *jmap.SetError { return jmap.InvalidProperties(desc, "envelope") }
	var at time.Time
	for k, v := range a.Parameters {
		switch k {
		case "HOLDFOR", "HOLDUNTIL":
			if s.opt.MaxDelayedSend <= 0 {
				return at, bad("delayed sending is not supported")
			}
			if v == nil || !at.IsZero() {
				return at, bad("one of HOLDFOR and HOLDUNTIL, with a value")
			}
			if k == "HOLDFOR" {
				n, err := strconv.ParseUint(*v, 10, 32)
				if err != nil || len(*v) > 9 {
					return at, bad("HOLDFOR must be a number of seconds")
				}
				at = now.Add(time.Duration(n) * time.Second)
			} else {
				t, err := time.Parse(time.RFC3339, *v)
				if err != nil {
					return at, bad("HOLDUNTIL must be an RFC 3339 date-time")
				}
				at = t
			}
			if at.Sub(now) > s.opt.MaxDelayedSend {
				return at, bad(fmt.Sprintf("the hold is longer than maxDelayedSend (%d seconds)", int64(s.opt.MaxDelayedSend/time.Second)))
			}
		case "SIZE":
			if v == nil {
				return at, bad("SIZE needs a value")
			}
			if _, err := strconv.ParseUint(*v, 10, 63); err != nil {
				return at, bad("SIZE must be a number")
			}
		case "BODY":
			if v == nil || (!strings.EqualFold(*v, "7BIT") && !strings.EqualFold(*v, "8BITMIME")) {
				return at, bad("BODY must be 7BIT or 8BITMIME")
			}
		case "SMTPUTF8", "ENVID":
		default:
			return at, bad(fmt.Sprintf("unsupported MAIL FROM parameter %s", k))
		}
	}
	return at, nil
}

// preparedSubmission is an EmailSubmission create checked, with its
// message built and stored, before the transaction.
type preparedSubmission struct {
	serr       *jmap.SetError
	messageID  string
	identityID string
	emailID    string
	threadID   string
	env        envelope
	derived    bool
	hold       time.Time
	outBlob    store.BlobInfo
	copies     []delivery.Copy
	external   []string
	rcpts      []string
}

// submissionCreateProps are the properties a client may give on create.
var submissionCreateProps = []string{"identityId", "emailId", "envelope", "undoStatus"}

func rateKey(acct store.AccountID, now time.Time) string {
	return fmt.Sprintf("sendrate\x00%s\x00%d", acct, now.Unix()/3600)
}

func rateCount(tx store.Tx, acct store.AccountID, now time.Time) (int, error) {
	v, err := tx.GetMeta(rateKey(acct, now))
	if err != nil || v == nil {
		return 0, err
	}
	n, _ := strconv.Atoi(string(v))
	return n, nil
}

// headerAddress returns the single address of the last of the named header
// fields, whether the field is present, and false when there are several
// fields or addresses (RFC 8621 §7: "the server SHOULD reject").
func headerAddress(m *mime.Message, name string) (addr string, present, ok bool) {
	vals := mime.Values(m.Headers, name)
	if len(vals) == 0 {
		return "", false, true
	}
	addrs := mime.AsAddresses(vals[len(vals)-1])
	if len(vals) > 1 || len(addrs) != 1 {
		return "", true, false
	}
	return addrs[0].Email, true, true
}

// prepare checks one create and builds what its transaction needs.
func (s *sender) prepare(ctx context.Context, c *jmap.Call, acct store.AccountID, raw json.RawMessage, now time.Time) (*preparedSubmission, error) {
	p := &preparedSubmission{}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		p.serr = jmap.InvalidProperties("the EmailSubmission is not a JSON object")
		return p, nil
	}
	for k, v := range obj {
		if !slices.Contains(submissionCreateProps, k) {
			if slices.Contains(submissionProps, k) {
				p.serr = jmap.InvalidProperties(fmt.Sprintf("%q is set by the server", k), k)
			} else {
				p.serr = jmap.InvalidProperties(fmt.Sprintf("unknown property %q", k), k)
			}
			return p, nil
		}
		if k == "undoStatus" && v != "pending" && v != nil {
			p.serr = jmap.InvalidProperties("undoStatus is pending on create", k)
			return p, nil
		}
	}
	idRef, _ := obj["identityId"].(string)
	emailRef, _ := obj["emailId"].(string)
	var ok bool
	if p.identityID, ok = c.ResolveID(idRef); !ok || idRef == "" {
		p.serr = jmap.InvalidProperties("no such identity", "identityId")
		return p, nil
	}
	if p.emailID, ok = c.ResolveID(emailRef); !ok || emailRef == "" {
		p.serr = jmap.InvalidProperties("no such email", "emailId")
		return p, nil
	}
	var given *envelope
	if v, ok := obj["envelope"]; ok && v != nil {
		if given, p.serr = decodeEnvelope(v); p.serr != nil {
			return p, nil
		}
	}
	var email *emailRecord
	var identity map[string]any
	var count int
	caller := c.Caller.Principal
	var mayIdentity bool
	err := c.Store().View(ctx, func(tx store.Tx) error {
		var err error
		if identity, err = loadIdentity(tx, acct, p.identityID); errors.Is(err, store.ErrNotFound) {
			p.serr = jmap.InvalidProperties("no such identity", "identityId")
			return nil
		} else if err != nil {
			return err
		}
		if email, err = loadEmail(tx, acct, p.emailID); errors.Is(err, store.ErrNotFound) {
			p.serr = jmap.InvalidProperties("no such email", "emailId")
			return nil
		} else if err != nil {
			return err
		}
		if count, err = rateCount(tx, acct, now); err != nil {
			return err
		}
		mayIdentity, err = sendAs(ctx, tx, caller, acct, str(identity["email"]))
		return err
	})
	if err != nil || p.serr != nil {
		return p, err
	}
	p.threadID = email.ThreadID
	if len(email.MessageID) > 0 {
		p.messageID = email.MessageID[0]
	}
	if count >= s.opt.MaxPerHour {
		p.serr = jmap.NewSetError("forbiddenToSend", fmt.Sprintf("at most %d messages an hour may be sent", s.opt.MaxPerHour))
		return p, nil
	}
	if email.Size > s.opt.MaxSize {
		p.serr = &jmap.SetError{Type: jmap.SetTooLarge, Description: "the message is too large to send", MaxSize: s.opt.MaxSize}
		return p, nil
	}
	_, body, err := c.Store().Blobs().Open(ctx, acct, store.BlobID(email.BlobID), 0, -1)
	if err != nil {
		return nil, fmt.Errorf("open message %s: %w", email.BlobID, err)
	}
	msgRaw, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		return nil, err
	}
	msg, err := mime.Parse(msgRaw)
	if err != nil {
		p.serr = &jmap.SetError{Type: "invalidEmail", Description: "the message has no header", Properties: []string{"headers"}}
		return p, nil
	}
	idEmail := str(identity["email"])
	// The From header field must be the Identity's (RFC 8621 §7.5
	// forbiddenFrom); a message without one is not a valid message.
	fromVals := mime.Values(msg.Headers, "From")
	var fromAddrs []mime.Address
	if len(fromVals) == 1 {
		fromAddrs = mime.AsAddresses(fromVals[0])
	}
	if len(fromAddrs) == 0 {
		p.serr = &jmap.SetError{Type: "invalidEmail", Description: "the message needs exactly one From header field with an address", Properties: []string{"from"}}
		return p, nil
	}
	for _, a := range fromAddrs {
		if !identityAllows(idEmail, a.Email) {
			p.serr = jmap.NewSetError("forbiddenFrom", fmt.Sprintf("the From address %s is not the identity's", a.Email))
			return p, nil
		}
	}
	mayFrom := mayIdentity
	if strings.HasPrefix(idEmail, "*@") {
		err = c.Store().View(ctx, func(tx store.Tx) error {
			var err error
			mayFrom, err = sendAs(ctx, tx, caller, acct, fromAddrs[0].Email)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if !mayFrom {
		p.serr = jmap.NewSetError("forbiddenFrom", "you may not send from this address")
		return p, nil
	}
	allowed := func(addr string) bool { return identityAllows(idEmail, addr) }
	if given != nil {
		p.env = *given
		// The envelope sender must be the Identity's address
		// (forbiddenMailFrom); a null reverse-path is not allowed.
		from, err := delivery.ParseAddress(given.MailFrom.Email)
		mayMailFrom := err == nil && allowed(from)
		if mayMailFrom && !strings.EqualFold(from, idEmail) {
			// A "*@domain" identity: the address itself must be one the
			// caller may send as.
			err = c.Store().View(ctx, func(tx store.Tx) error {
				var err error
				mayMailFrom, err = sendAs(ctx, tx, caller, acct, from)
				return err
			})
			if err != nil {
				return nil, err
			}
		}
		if !mayMailFrom {
			p.serr = jmap.NewSetError("forbiddenMailFrom", "the envelope sender must be the identity's address")
			return p, nil
		}
		p.env.MailFrom.Email = from
	} else {
		// RFC 8621 §7: the envelope derived from the header fields.
		p.derived = true
		from := ""
		for _, name := range []string{"Sender", "From"} {
			a, present, ok := headerAddress(msg, name)
			if !ok {
				p.serr = &jmap.SetError{Type: "invalidEmail", Description: fmt.Sprintf("more than one %s address", name),
					Properties: []string{strings.ToLower(name)}}
				return p, nil
			}
			if present {
				from = a
				break
			}
		}
		if norm, err := delivery.ParseAddress(from); err == nil && allowed(norm) {
			from = norm
		} else if !strings.HasPrefix(idEmail, "*@") {
			from = idEmail
		} else {
			from = fromAddrs[0].Email
		}
		p.env.MailFrom = envelopeAddr{Email: from}
		seen := map[string]bool{}
		for _, name := range []string{"To", "Cc", "Bcc"} {
			for _, v := range mime.Values(msg.Headers, name) {
				for _, a := range mime.AsAddresses(v) {
					if k := strings.ToLower(a.Email); !seen[k] {
						seen[k] = true
						p.env.RcptTo = append(p.env.RcptTo, envelopeAddr{Email: a.Email})
					}
				}
			}
		}
	}
	hold, serr := s.holdUntil(p.env.MailFrom, now)
	if serr != nil {
		p.serr = serr
		return p, nil
	}
	if hold.After(now) {
		p.hold = hold
	}
	for _, r := range p.env.RcptTo {
		if len(r.Parameters) > 0 {
			p.serr = jmap.InvalidProperties("RCPT TO parameters are not supported", "envelope")
			return p, nil
		}
	}
	if len(p.env.RcptTo) == 0 {
		p.serr = jmap.NewSetError("noRecipients", "the envelope has no recipients")
		return p, nil
	}
	if len(p.env.RcptTo) > s.opt.MaxRecipients {
		p.serr = &jmap.SetError{Type: "tooManyRecipients", Description: "too many recipients", MaxRecipients: s.opt.MaxRecipients}
		return p, nil
	}
	local := map[string][]delivery.Target{}
	away := map[store.AccountID]bool{} // local targets whose vacation response is on
	var invalid []string
	err = c.Store().View(ctx, func(tx store.Tx) error {
		// Mail from someone else's account (a shared mailbox) stays among
		// those who can reach that account, unless the operator allows
		// any recipient (DESIGN.md).
		// The account sent as is the one whose address is the From (a
		// user may send as a shared mailbox from their own account).
		senderAcct := acct
		if pr, err := tx.Principals().ByEmail(strings.ToLower(fromAddrs[0].Email)); err == nil && pr.Account != "" {
			senderAcct = pr.Account
		}
		var audience map[store.PrincipalID]bool
		if c.Caller != nil && store.AccountID(c.Caller.Principal) != senderAcct && !s.opt.SharedToAnyone {
			accts, _ := c.Registry().Accounts.(*Accounts)
			if accts != nil {
				ps, err := accts.dir.Audience(tx, senderAcct)
				if err != nil {
					return err
				}
				audience = map[store.PrincipalID]bool{}
				for _, p := range ps {
					audience[p] = true
				}
			}
		}
		for i, r := range p.env.RcptTo {
			addr, err := delivery.ParseAddress(r.Email)
			if err != nil {
				invalid = append(invalid, r.Email)
				continue
			}
			p.env.RcptTo[i].Email = addr
			targets, isLocal, err := s.agent.Resolve(tx, addr)
			if err != nil {
				return err
			}
			if audience != nil && !reachesAll(tx, audience, senderAcct, addr, isLocal) {
				invalid = append(invalid, r.Email)
				continue
			}
			switch {
			case isLocal:
				local[addr] = targets
				for _, t := range targets {
					if _, on, err := vacationRecord(tx, t.Account); err != nil {
						return err
					} else if on {
						away[t.Account] = true
					}
				}
			case s.agent.HasRelay():
				p.external = append(p.external, addr)
			default:
				// No relay: only principals of this server can be
				// reached.
				invalid = append(invalid, r.Email)
			}
			p.rcpts = append(p.rcpts, addr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(invalid) > 0 {
		p.serr = &jmap.SetError{Type: "invalidRecipients", Description: "these recipients cannot be sent to", InvalidRecipients: invalid}
		return p, nil
	}
	out := s.agent.Sign(delivery.StripBcc(msgRaw))
	if !p.hold.IsZero() || len(p.external) > 0 {
		infos, err := c.Store().Blobs().UploadBatch(ctx, acct, []store.BlobInput{{Type: "message/rfc822", Data: out}})
		if err != nil {
			return nil, err
		}
		p.outBlob = infos[0]
	}
	if p.hold.IsZero() && len(local) > 0 {
		parsed := msg // out is msgRaw unless a Bcc field went or a signature came
		if len(out) == 0 || len(out) != len(msgRaw) || &out[0] != &msgRaw[0] {
			parsed = nil
		}
		if p.copies, err = s.agent.PrepareLocal(ctx, acct, p.env.MailFrom.Email, "", out, parsed, local); err != nil {
			return nil, err
		}
		if len(p.copies) > 0 {
			// Parsed here, not in the delivering transaction, which
			// runs in turn with other writers.
			p.copies[0].Msg.Memo(deliveryFacts)
			p.copies[0].Msg.HostNote = &deliveryNote{away: away}
		}
	}
	return p, nil
}

type submissionSetArgs struct {
	jmap.SetArgs
	OnSuccessUpdateEmail  map[string]json.RawMessage `json:"onSuccessUpdateEmail"`
	OnSuccessDestroyEmail []string                   `json:"onSuccessDestroyEmail"`
}

// set is EmailSubmission/set (RFC 8621 §7.5): creates send, an update may
// cancel a pending submission, and then one implicit Email/set applies
// onSuccessUpdateEmail and onSuccessDestroyEmail.
func (s *sender) set(ctx context.Context, c *jmap.Call) (any, error) {
	var args submissionSetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	acct, err := c.WritableAccount(ctx, args.AccountID, CapSubmission)
	if err != nil {
		return nil, err
	}
	if err := args.CheckSize(c.Limits()); err != nil {
		return nil, err
	}
	now := s.agent.Now()
	preps := make([]*preparedSubmission, len(args.Create.Keys))
	for i, cid := range args.Create.Keys {
		if preps[i], err = s.prepare(ctx, c, acct.ID, args.Create.Values[cid], now); err != nil {
			return nil, err
		}
	}
	resp := &jmap.SetResponse{AccountID: args.AccountID}
	created := map[string]map[string]any{}
	notCreated := map[string]*jmap.SetError{}
	emailOf := map[string]string{} // submission id → email id, for onSuccess*
	changes, err := c.Store().Update(ctx, func(tx store.Tx) error {
		clear(created)
		clear(notCreated)
		var err error
		if resp.OldState, err = jmap.CheckState(tx, acct.ID, "EmailSubmission", args.IfInState, ""); err != nil {
			return err
		}
		count, err := rateCount(tx, acct.ID, now)
		if err != nil {
			return err
		}
		for i, cid := range args.Create.Keys {
			p := preps[i]
			if p.serr != nil {
				notCreated[cid] = p.serr
				continue
			}
			obj, serr, err := s.create(tx, acct.ID, p, now, &count)
			if err != nil {
				return err
			}
			if serr != nil {
				notCreated[cid] = serr
				continue
			}
			created[cid] = obj
		}
		if len(created) > 0 {
			return tx.PutMeta(rateKey(acct.ID, now), []byte(strconv.Itoa(count)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for cid, v := range created {
		id := v["id"].(string)
		c.Created(cid, id)
		emailOf[id] = preps[slices.Index(args.Create.Keys, cid)].emailID
	}
	resp.NewState = jmap.NewState(changes, acct.ID, "EmailSubmission", resp.OldState)
	if len(args.Update) > 0 || (args.Destroy != nil && len(*args.Destroy) > 0) {
		// The emails of submissions updated or destroyed, read before they
		// go.
		err := c.Store().View(ctx, func(tx store.Tx) error {
			ids := slices.Collect(func(yield func(string) bool) {
				for id := range args.Update {
					if !yield(id) {
						return
					}
				}
			})
			if args.Destroy != nil {
				ids = append(ids, *args.Destroy...)
			}
			for _, raw := range ids {
				id, ok := c.ResolveID(raw)
				if !ok {
					continue
				}
				b, err := tx.Get(acct.ID, "EmailSubmission", id)
				if errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				var m struct {
					EmailID string `json:"emailId"`
				}
				if json.Unmarshal(b, &m) == nil {
					emailOf[id] = m.EmailID
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		rest := args.SetArgs
		rest.Create, rest.IfInState = jmap.OrderedObjects{}, nil
		later, err := s.typ.SetWith(ctx, c, &rest)
		if err != nil {
			return nil, err
		}
		resp.NewState = later.NewState
		resp.Updated, resp.Destroyed = later.Updated, later.Destroyed
		resp.NotUpdated, resp.NotDestroyed = later.NotUpdated, later.NotDestroyed
	}
	if len(created) > 0 {
		resp.Created = created
	}
	if len(notCreated) > 0 {
		resp.NotCreated = notCreated
	}
	if err := s.onSuccess(ctx, c, &args, resp, emailOf); err != nil {
		return nil, err
	}
	return resp, nil
}

// create stores one submission within tx: local recipients get their copy
// now (unless it is held), the rest are queued.
func (s *sender) create(tx store.Tx, acct store.AccountID, p *preparedSubmission, now time.Time, count *int) (map[string]any, *jmap.SetError, error) {
	if _, err := tx.Get(acct, "Email", p.emailID); errors.Is(err, store.ErrNotFound) {
		return nil, jmap.InvalidProperties("no such email", "emailId"), nil
	} else if err != nil {
		return nil, nil, err
	}
	if _, err := tx.Get(acct, "Identity", p.identityID); errors.Is(err, store.ErrNotFound) {
		return nil, jmap.InvalidProperties("no such identity", "identityId"), nil
	} else if err != nil {
		return nil, nil, err
	}
	if *count >= s.opt.MaxPerHour {
		return nil, jmap.NewSetError("forbiddenToSend", fmt.Sprintf("at most %d messages an hour may be sent", s.opt.MaxPerHour)), nil
	}
	*count++
	id, err := tx.NewID()
	if err != nil {
		return nil, nil, err
	}
	status := map[string]delivery.Status{}
	sendAt, undo := now, "final"
	job := &delivery.Job{ID: id, Account: acct, Submission: id, From: p.env.MailFrom.Email, Blob: p.outBlob.ID, NotBefore: now}
	if !p.hold.IsZero() {
		sendAt, undo = p.hold, "pending"
		job.Hold, job.NotBefore, job.Rcpts = true, p.hold, p.rcpts
		for _, r := range p.rcpts {
			status[r] = delivery.Queued("")
		}
	} else {
		st, err := s.agent.DeliverLocal(tx, p.copies, p.env.MailFrom.Email)
		if err != nil {
			return nil, nil, err
		}
		for r, v := range st {
			status[r] = v
		}
		for _, r := range p.external {
			status[r] = delivery.Queued("")
		}
		job.Rcpts = p.external
	}
	if len(job.Rcpts) > 0 {
		if err := s.agent.Enqueue(tx, job); err != nil {
			return nil, nil, err
		}
	}
	rec := map[string]any{"id": id, "identityId": p.identityID, "emailId": p.emailID, "threadId": p.threadID,
		"envelope": p.env, "sendAt": utcDate(sendAt), "undoStatus": undo, "deliveryStatus": status,
		"dsnBlobIds": []string{}, "mdnBlobIds": []string{}}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.Create(acct, "EmailSubmission", id, b); err != nil {
		return nil, nil, err
	}
	if p.messageID != "" {
		if err := tx.PutMeta(sentKey(p.messageID), []byte(string(acct)+"\x00"+id)); err != nil {
			return nil, nil, err
		}
	}
	out := map[string]any{"id": id, "threadId": p.threadID, "sendAt": rec["sendAt"], "undoStatus": undo,
		"deliveryStatus": status, "dsnBlobIds": []string{}, "mdnBlobIds": []string{}}
	if p.derived {
		out["envelope"] = p.env
	}
	return out, nil, nil
}

// validateUpdate lets a pending submission be canceled (RFC 8621 §7:
// undoStatus) and nothing else change.
func (s *sender) validateUpdate(ctx context.Context, tx store.Tx, acct store.AccountID, obj, old map[string]any) *jmap.SetError {
	if old == nil {
		return jmap.NewSetError(jmap.SetForbidden, "")
	}
	if obj["undoStatus"] == old["undoStatus"] {
		return nil
	}
	if obj["undoStatus"] != "canceled" {
		return jmap.InvalidProperties("undoStatus may only change to canceled", "undoStatus")
	}
	if old["undoStatus"] != "pending" {
		return jmap.NewSetError("cannotUnsend", "the message was sent")
	}
	ok, err := s.agent.Cancel(tx, str(obj["id"]))
	if err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if !ok {
		return jmap.NewSetError("cannotUnsend", "the message was sent")
	}
	if ds, ok := obj["deliveryStatus"].(map[string]any); ok {
		for r := range ds {
			ds[r] = delivery.Status{SMTPReply: "", Delivered: "no", Displayed: "unknown"}
		}
	}
	return nil
}

// onSuccess runs the implicit Email/set of onSuccessUpdateEmail and
// onSuccessDestroyEmail for the submissions that succeeded, and adds its
// response after the EmailSubmission/set one (RFC 8621 §7.5).
func (s *sender) onSuccess(ctx context.Context, c *jmap.Call, args *submissionSetArgs, resp *jmap.SetResponse, emailOf map[string]string) error {
	if len(args.OnSuccessUpdateEmail) == 0 && len(args.OnSuccessDestroyEmail) == 0 {
		return nil
	}
	succeeded := func(ref string) (string, bool) {
		if cid, ok := strings.CutPrefix(ref, "#"); ok {
			v, ok := resp.Created[cid]
			if !ok {
				return "", false
			}
			return str(v["id"]), true
		}
		if _, ok := resp.Updated[ref]; ok {
			return ref, true
		}
		return ref, slices.Contains(resp.Destroyed, ref)
	}
	update := map[string]json.RawMessage{}
	var destroy []string
	for ref, patch := range args.OnSuccessUpdateEmail {
		if id, ok := succeeded(ref); ok && emailOf[id] != "" {
			update[emailOf[id]] = patch
		}
	}
	for _, ref := range args.OnSuccessDestroyEmail {
		if id, ok := succeeded(ref); ok && emailOf[id] != "" {
			destroy = append(destroy, emailOf[id])
		}
	}
	if len(update) == 0 && len(destroy) == 0 {
		return nil
	}
	b, err := json.Marshal(map[string]any{"accountId": args.AccountID, "update": update, "destroy": destroy})
	if err != nil {
		return err
	}
	sub := *c
	sub.Args = b
	out, err := emailSet(ctx, &sub)
	if err != nil {
		var me *jmap.MethodError
		if errors.As(err, &me) {
			return c.AddResponse("error", me)
		}
		return err
	}
	return c.AddResponse("Email/set", out)
}

// reportStatus merges new delivery statuses into a stored submission.
func reportStatus(tx store.Tx, acct store.AccountID, sub string, status map[string]delivery.Status, final bool, dsn store.BlobID) error {
	b, err := tx.Get(acct, "EmailSubmission", sub)
	if errors.Is(err, store.ErrNotFound) {
		return nil // destroyed: the deliveries go on (RFC 8621 §7.5)
	}
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	ds, _ := m["deliveryStatus"].(map[string]any)
	if ds == nil {
		ds = map[string]any{}
	}
	for r, st := range status {
		ds[r] = st
	}
	m["deliveryStatus"] = ds
	if final && m["undoStatus"] == "pending" {
		m["undoStatus"] = "final"
	}
	if dsn != "" {
		list, _ := m["dsnBlobIds"].([]any)
		m["dsnBlobIds"] = append(list, string(dsn))
		if err := tx.BlobRef(acct, dsn); err != nil {
			return err
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tx.Put(acct, "EmailSubmission", sub, out)
}

// destroySubmission releases the DSN blobs the record holds; the
// deliveries themselves go on (RFC 8621 §7.5).
func destroySubmission(ctx context.Context, tx store.Tx, acct store.AccountID, obj map[string]any) *jmap.SetError {
	dsn, _ := obj["dsnBlobIds"].([]any)
	mdn, _ := obj["mdnBlobIds"].([]any)
	for _, b := range append(dsn, mdn...) {
		if err := tx.BlobUnref(acct, store.BlobID(str(b))); err != nil && !errors.Is(err, store.ErrNotFound) {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
	}
	return nil
}

// reachesAll reports whether the principal addr names is among those who
// can reach acct (its owner, or someone with rights there; a group when
// all its members can).
func reachesAll(tx store.Tx, audience map[store.PrincipalID]bool, acct store.AccountID, addr string, local bool) bool {
	if !local {
		return false
	}
	p, err := tx.Principals().ByEmail(strings.ToLower(addr))
	if err != nil {
		return false
	}
	if p.Account == acct {
		return true
	}
	if p.Type != store.Group {
		return audience[p.ID]
	}
	for _, m := range p.Members {
		if !audience[m] {
			return false
		}
	}
	return len(p.Members) > 0
}
