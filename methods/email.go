package methods

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// utcDate formats a time as an RFC 8620 §1.4 UTCDate.
func utcDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// emailType is the Email data type (RFC 8621 §4) for the generic /set
// (update and destroy), /changes and the state machinery. Creation goes
// through Email/import and Email/set's own create.
var emailType = &jmap.Type{
	Name:       "Email",
	Capability: CapMail,
	Properties: storedEmailProps,
	Immutable: []string{"blobId", "threadId", "size", "receivedAt", "messageId", "inReplyTo", "references",
		"sender", "from", "to", "cc", "bcc", "replyTo", "subject", "sentAt", "hasAttachment", "preview"},
	Validate:      validateEmailUpdate,
	OnDestroy:     destroyEmail,
	View:          viewEmail,
	FilterChanges: filterEmailChanges,
}

// threadType is the Thread data type (RFC 8621 §3).
var threadType = &jmap.Type{
	Name:          "Thread",
	Capability:    CapMail,
	Properties:    []string{"id", "emailIds"},
	FilterChanges: filterThreadChanges,
}

func registerEmail(r *jmap.Registry) {
	r.Register(emailType, "changes")
	r.Register(threadType, "changes")
	r.Handle("Email/import", CapMail, emailImport)
	r.Handle("Email/copy", CapMail, emailCopy)
	r.Handle("Email/set", CapMail, emailSet)
	r.Handle("Email/get", CapMail, emailGet)
	r.Handle("Email/query", CapMail, emailQuery)
	r.Handle("Email/queryChanges", CapMail, emailQueryChanges)
	r.Handle("Thread/get", CapMail, threadGet)
}

// recordFromMessage fills the header and body facts of a new email.
func recordFromMessage(m *mime.Message, e *emailRecord) {
	last := func(name string) (string, bool) {
		v := mime.Values(m.Headers, name)
		if len(v) == 0 {
			return "", false
		}
		return v[len(v)-1], true
	}
	ids := func(name string) []string {
		if v, ok := last(name); ok {
			return mime.AsMessageIDs(v)
		}
		return nil
	}
	addrs := func(name string) []mime.Address {
		if v, ok := last(name); ok {
			return mime.AsAddresses(v)
		}
		return nil
	}
	e.MessageID, e.InReplyTo, e.References = ids("Message-ID"), ids("In-Reply-To"), ids("References")
	e.Sender, e.From, e.To = addrs("Sender"), addrs("From"), addrs("To")
	e.Cc, e.Bcc, e.ReplyTo = addrs("Cc"), addrs("Bcc"), addrs("Reply-To")
	if v, ok := last("Subject"); ok {
		s := mime.AsText(v)
		e.Subject = &s
	}
	if v, ok := last("Date"); ok {
		if t := mime.AsDate(v); t != nil {
			s := t.Format(time.RFC3339)
			e.SentAt = &s
		}
	}
	e.HasAttachment = m.HasAttachment()
	e.Preview = m.Preview()
	e.Size = int64(len(m.Raw))
}

// receivedFromHeaders returns the date of the most recent Received header
// (RFC 8621 §4.8 default for receivedAt).
func receivedFromHeaders(m *mime.Message) (time.Time, bool) {
	for _, v := range mime.Values(m.Headers, "Received") {
		if i := strings.LastIndexByte(v, ';'); i >= 0 {
			if t := mime.AsDate(v[i+1:]); t != nil {
				return *t, true
			}
		}
	}
	return time.Time{}, false
}

// addEmail stores a new email: its record, its thread (merging threads it
// joins), the message-id index, blob reference and mailbox counts.
func addEmail(tx store.Tx, acct store.AccountID, e *emailRecord, cnt *counter) error {
	id, err := tx.NewID()
	if err != nil {
		return err
	}
	e.ID = id
	if err := assignThread(tx, acct, e, cnt); err != nil {
		return err
	}
	b, err := marshalEmail(e)
	if err != nil {
		return err
	}
	if err := tx.Create(acct, "Email", e.ID, b); err != nil {
		return err
	}
	if err := tx.BlobRef(acct, store.BlobID(e.BlobID)); err != nil {
		return fmt.Errorf("reference blob %s: %w", e.BlobID, err)
	}
	if err := indexEmail(tx, acct, e, e.MailboxIDs, true, true); err != nil {
		return err
	}
	if err := searchAdd(tx, acct, e, cnt); err != nil {
		return err
	}
	return cnt.change(nil, membershipOf(e))
}

// emailFacts returns a record holding what msg says of a new email: its
// header facts, preview and size, and its body tokens. Callers work it out
// before the transaction that stores the email, which writers share one
// after the other, so that the transaction is short.
func emailFacts(msg *mime.Message) *emailRecord {
	e := &emailRecord{}
	recordFromMessage(msg, e)
	e.search = bodySearchText(msg)
	return e
}

// newEmail adds the email whose message, stored as blob, says facts
// (emailFacts), after checking the mailboxIds and keywords the client
// gave and then its receivedAt; it returns the "created" entry of
// Email/import and Email/set (RFC 8621 §4.6, §4.8), or the SetError that
// refuses it. facts is left as it is, for a transaction run again.
func newEmail(tx store.Tx, acct store.AccountID, cnt *counter, facts *emailRecord, blob store.BlobInfo,
	mailboxIDs, keywords any, resolve func(string) (string, bool), receivedAt func() (time.Time, *jmap.SetError),
) (map[string]any, *jmap.SetError, error) {
	mboxes, serr := checkMailboxIDs(tx, acct, mailboxIDs, resolve)
	if serr != nil {
		return nil, serr, nil
	}
	kw, serr := normalizeKeywords(keywords)
	if serr != nil {
		return nil, serr, nil
	}
	at, serr := receivedAt()
	if serr != nil {
		return nil, serr, nil
	}
	e := new(emailRecord)
	*e = *facts
	e.BlobID, e.MailboxIDs, e.Keywords, e.ReceivedAt = string(blob.ID), mboxes, kw, utcDate(at)
	if err := addEmail(tx, acct, e, cnt); err != nil {
		return nil, nil, err
	}
	return map[string]any{"id": e.ID, "blobId": e.BlobID, "threadId": e.ThreadID, "size": e.Size}, nil, nil
}

// assignThread puts a new email in the thread of the emails it shares a
// message id and base subject with (RFC 8621 §3), merging several such
// threads into the oldest one. Merged emails are destroyed and created
// again with new ids, since threadId is immutable (RFC 8621 §3).
func assignThread(tx store.Tx, acct store.AccountID, e *emailRecord, cnt *counter) error {
	subj := ""
	if e.Subject != nil {
		subj = baseSubject(*e.Subject)
	}
	var found []*threadRecord
	seen := map[string]bool{}
	for _, mid := range threadKeyFor(e) {
		v, err := tx.GetMeta(messageIDKey(acct, subj, mid))
		if err != nil {
			return err
		}
		if v == nil || seen[string(v)] {
			continue
		}
		seen[string(v)] = true
		t, err := loadThread(tx, acct, string(v))
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if t.Subject == subj {
			found = append(found, t)
		}
	}
	var keep *threadRecord
	created := false
	if len(found) == 0 {
		id, err := tx.NewID()
		if err != nil {
			return err
		}
		keep = &threadRecord{ID: id, Subject: subj}
		created = true
	} else {
		slices.SortFunc(found, func(a, b *threadRecord) int { return jmap.CompareIDs(a.ID, b.ID) })
		keep = found[0]
		for _, other := range found[1:] {
			if err := mergeThread(tx, acct, other, keep, cnt); err != nil {
				return err
			}
		}
	}
	e.ThreadID = keep.ID
	keep.add(e.ID, e.ReceivedAt)
	if err := putThread(tx, acct, keep, created); err != nil {
		return err
	}
	for _, mid := range threadKeyFor(e) {
		if err := tx.PutMeta(messageIDKey(acct, subj, mid), []byte(keep.ID)); err != nil {
			return err
		}
	}
	return nil
}

// mergeThread moves every email of from into into, each under a new id.
func mergeThread(tx store.Tx, acct store.AccountID, from, into *threadRecord, cnt *counter) error {
	for _, old := range from.EmailIDs {
		e, err := loadEmail(tx, acct, old)
		if err != nil {
			return err
		}
		before := membershipOf(e)
		if err := indexEmail(tx, acct, e, e.MailboxIDs, true, false); err != nil {
			return err
		}
		if err := tx.Delete(acct, "Email", old); err != nil {
			return err
		}
		id, err := tx.NewID()
		if err != nil {
			return err
		}
		e.ID, e.ThreadID = id, into.ID
		b, err := marshalEmail(e)
		if err != nil {
			return err
		}
		if err := tx.Create(acct, "Email", id, b); err != nil {
			return err
		}
		if err := searchMove(tx, acct, &cnt.search, old, id); err != nil {
			return err
		}
		if err := cnt.change(before, membershipOf(e)); err != nil {
			return err
		}
		if err := indexEmail(tx, acct, e, e.MailboxIDs, true, true); err != nil {
			return err
		}
		into.add(id, e.ReceivedAt)
		for _, mid := range threadKeyFor(e) {
			if err := tx.PutMeta(messageIDKey(acct, into.Subject, mid), []byte(into.ID)); err != nil {
				return err
			}
		}
	}
	return tx.Delete(acct, "Thread", from.ID)
}

// emailImportItem is an EmailImport (RFC 8621 §4.8). Its members are
// decoded as any value and checked one by one, so that a wrong type is
// reported as invalidProperties naming the property (RFC 8620 §5.3).
type emailImportItem struct {
	BlobID     any `json:"blobId"`
	MailboxIDs any `json:"mailboxIds"`
	Keywords   any `json:"keywords"`
	ReceivedAt any `json:"receivedAt"`
}

// emailImportProps are the properties of an EmailImport.
var emailImportProps = []string{"blobId", "mailboxIds", "keywords", "receivedAt"}

type emailImportArgs struct {
	AccountID string                     `json:"accountId"`
	IfInState *string                    `json:"ifInState"`
	Emails    map[string]json.RawMessage `json:"emails"`
}

type emailImportResponse struct {
	AccountID  string                    `json:"accountId"`
	OldState   string                    `json:"oldState"`
	NewState   string                    `json:"newState"`
	Created    map[string]map[string]any `json:"created"`
	NotCreated map[string]*jmap.SetError `json:"notCreated"`
}

// parsedImport is an import item checked and parsed outside the
// transaction.
type parsedImport struct {
	item  emailImportItem
	msg   *mime.Message
	facts *emailRecord
	blob  store.BlobInfo
	serr  *jmap.SetError
	recAt time.Time
}

func parseUTCDate(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || !strings.HasSuffix(s, "Z") {
		return time.Time{}, false
	}
	return t, true
}

// emailImport adds messages from blobs (RFC 8621 §4.8).
func emailImport(ctx context.Context, c *jmap.Call) (any, error) {
	var args emailImportArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if args.Emails == nil {
		return nil, jmap.InvalidArguments("emails is required")
	}
	// An import has no effect outside the store: the request's one wait
	// for the disk covers it, with the Blob/upload before it.
	ctx = c.SyncLater(ctx)
	acct, err := c.WritableAccount(ctx, args.AccountID, CapMail)
	if err != nil {
		return nil, err
	}
	if len(args.Emails) > c.Limits().MaxObjectsInSet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
	}
	// Parse every message before the transaction, which may run again.
	items := map[string]*parsedImport{}
	for cid, raw := range args.Emails {
		p := &parsedImport{}
		items[cid] = p
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil || members == nil || json.Unmarshal(raw, &p.item) != nil {
			p.serr = jmap.InvalidProperties("an EmailImport is a JSON object")
			continue
		}
		var unknown []string
		for k := range members {
			if !slices.Contains(emailImportProps, k) {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			slices.Sort(unknown)
			p.serr = jmap.InvalidProperties("unknown EmailImport properties", unknown...)
			continue
		}
		ref, _ := p.item.BlobID.(string)
		blobID, ok := c.ResolveID(ref)
		if !ok || ref == "" {
			p.serr = jmap.InvalidProperties("unknown blob", "blobId")
			continue
		}
		// A grantee imports only blobs they may read (RFC 8620 §6.1).
		open := c.Store().Blobs().Open
		if store.AccountID(c.Caller.Principal) != acct.ID {
			open = func(ctx context.Context, acct store.AccountID, id store.BlobID, off, n int64) (store.BlobInfo, io.ReadSeekCloser, error) {
				return openBlobChecked(ctx, c, acct, id, off, n)
			}
		}
		info, body, err := open(ctx, acct.ID, store.BlobID(blobID), 0, -1)
		if errors.Is(err, store.ErrNotFound) {
			p.serr = jmap.InvalidProperties("unknown blob", "blobId")
			continue
		} else if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			return nil, err
		}
		p.blob = info
		p.msg, err = mime.Parse(data)
		if err != nil {
			p.serr = jmap.NewSetError("invalidEmail", "the blob is not an RFC 5322 message")
			continue
		}
		p.facts = emailFacts(p.msg)
		p.recAt = time.Now()
		if p.item.ReceivedAt != nil {
			s, _ := p.item.ReceivedAt.(string)
			t, ok := parseUTCDate(s)
			if !ok {
				p.serr = jmap.InvalidProperties("receivedAt must be a UTCDate", "receivedAt")
				continue
			}
			p.recAt = t
		} else if t, ok := receivedFromHeaders(p.msg); ok {
			p.recAt = t
		}
	}
	resp := &emailImportResponse{AccountID: args.AccountID,
		Created: map[string]map[string]any{}, NotCreated: map[string]*jmap.SetError{}}
	leftWaiting := false // emails past the index budget of a transaction
	cids := make([]string, 0, len(items))
	for cid := range items {
		cids = append(cids, cid)
	}
	slices.Sort(cids)
	// Each import stands alone (RFC 8621 §4.8: created or notCreated per
	// email), so a large one commits in chunks that a transaction of the
	// store holds whatever the messages' headers.
	var newest []store.StateChange
	for _, chunk := range importChunks(cids, items) {
		first := len(resp.Created)+len(resp.NotCreated) == 0
		created, notCreated := map[string]map[string]any{}, map[string]*jmap.SetError{}
		changes, err := c.Store().Update(ctx, func(tx store.Tx) error {
			clear(created)
			clear(notCreated)
			if first {
				var err error
				if resp.OldState, err = jmap.CheckState(tx, acct.ID, "Email", args.IfInState, ""); err != nil {
					return err
				}
			}
			cnt := newCounter(tx, acct.ID)
			for _, cid := range chunk {
				p := items[cid]
				if p.serr != nil {
					notCreated[cid] = p.serr
					continue
				}
				recAt := p.recAt
				access, err := callerAccess(ctx, tx, acct.ID)
				if err != nil {
					return err
				}
				if serr := checkAddRights(access, p.item.MailboxIDs, c.ResolveID); serr != nil {
					notCreated[cid] = serr
					continue
				}
				made, serr, err := newEmail(tx, acct.ID, cnt, p.facts, p.blob, p.item.MailboxIDs, p.item.Keywords, c.ResolveID,
					func() (time.Time, *jmap.SetError) { return recAt, nil })
				if err != nil {
					return err
				}
				if serr != nil {
					notCreated[cid] = serr
					continue
				}
				created[cid] = made
			}
			err := cnt.flush()
			leftWaiting = leftWaiting || cnt.search.deferred > 0
			return err
		})
		if _, err := addChunk(ctx, acct.ID, "import", chunk, first, err, resp.Created, resp.NotCreated, &newest,
			created, notCreated, changes); err != nil {
			return nil, err
		}
	}
	changes := newest
	for cid, v := range resp.Created {
		c.Created(cid, v["id"].(string))
	}
	if leftWaiting {
		indexWaiting(ctx, c.Store(), acct.ID)
	}
	resp.NewState = jmap.NewState(changes, acct.ID, "Email", resp.OldState)
	if len(resp.Created) == 0 {
		resp.Created = nil
	}
	if len(resp.NotCreated) == 0 {
		resp.NotCreated = nil
	}
	return resp, nil
}

// validateEmailUpdate checks an Email/set update: only keywords and
// mailboxIds change (the rest is immutable), and the mailbox counts follow.
func validateEmailUpdate(ctx context.Context, tx store.Tx, acct store.AccountID, obj, old map[string]any) *jmap.SetError {
	if old == nil {
		return jmap.NewSetError(jmap.SetForbidden, "emails are created with Email/import")
	}
	kw, serr := normalizeKeywords(obj["keywords"])
	if serr != nil {
		return serr
	}
	mboxes, serr := checkMailboxIDs(tx, acct, obj["mailboxIds"], func(s string) (string, bool) { return s, true })
	if serr != nil {
		return serr
	}
	// The stored record, not the caller's view of it, which may lack the
	// mailboxes they cannot see.
	oldRec, err := loadEmail(tx, acct, str(obj["id"]))
	if err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	access, err := callerAccess(ctx, tx, acct)
	if err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if mboxes, serr = checkEmailUpdate(access, oldRec, obj, kw, mboxes); serr != nil {
		return serr
	}
	newRec := *oldRec
	newRec.Keywords, newRec.MailboxIDs = kw, mboxes
	noteLeft(&newRec, oldRec.MailboxIDs, mboxes)
	if newRec.Left != nil {
		obj["left"] = idMap(newRec.Left)
	}
	obj["keywords"], obj["mailboxIds"] = idMap(kw), idMap(mboxes)
	cnt := newCounter(tx, acct)
	if err := cnt.change(membershipOf(oldRec), membershipOf(&newRec)); err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if err := indexMove(tx, acct, &newRec, oldRec.MailboxIDs, newRec.MailboxIDs); err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if err := cnt.flush(); err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	return nil
}

func recordFromMap(m map[string]any) (*emailRecord, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var e emailRecord
	return &e, json.Unmarshal(b, &e)
}

// destroyEmail removes an email from its thread and counts and releases its
// blob.
func destroyEmail(ctx context.Context, tx store.Tx, acct store.AccountID, obj map[string]any) *jmap.SetError {
	e, err := loadEmail(tx, acct, str(obj["id"]))
	if err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	access, err := callerAccess(ctx, tx, acct)
	if err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if serr := checkEmailDestroy(access, e); serr != nil {
		return serr
	}
	if err := removeEmail(tx, acct, e); err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if err := putTombstone(tx, acct, e); err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	return nil
}

// removeEmail undoes addEmail except for deleting the record itself.
func removeEmail(tx store.Tx, acct store.AccountID, e *emailRecord) error {
	if err := indexEmail(tx, acct, e, e.MailboxIDs, true, false); err != nil {
		return err
	}
	if err := searchRemove(tx, acct, e.ID); err != nil {
		return err
	}
	cnt := newCounter(tx, acct)
	if err := cnt.change(membershipOf(e), nil); err != nil {
		return err
	}
	if err := cnt.flush(); err != nil {
		return err
	}
	t, err := loadThread(tx, acct, e.ThreadID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil {
		t.remove(e.ID)
		if err := putThread(tx, acct, t, false); err != nil {
			return err
		}
	}
	if err := tx.BlobUnref(acct, store.BlobID(e.BlobID)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// normalizeEmailPatches rewrites Email/set update patches before the
// generic /set applies them: keyword names in "keywords/..." paths are
// lowercased, as keywords are case-insensitive and stored in lowercase
// (RFC 8621 §4.1.1), so "keywords/$SEEN": null removes $seen; and
// "#creationId" mailbox ids, in "mailboxIds/#..." paths or as keys of a
// whole mailboxIds value, become the ids created earlier in the request
// (RFC 8620 §5.3: a reference "may be set (via create or update) in the
// same request as the referenced record is created"). A patch that does not
// decode, or whose paths would collide, is left for /set to judge.
func normalizeEmailPatches(c *jmap.Call, update map[string]json.RawMessage) {
	resolve := func(id string) string {
		if real, ok := c.ResolveID(id); ok {
			return real
		}
		return id
	}
	for id, raw := range update {
		var patch map[string]any
		if json.Unmarshal(raw, &patch) != nil || patch == nil {
			continue
		}
		out := make(map[string]any, len(patch))
		for k, v := range patch {
			switch {
			case strings.HasPrefix(k, "keywords/"):
				k = strings.ToLower(k)
			case strings.HasPrefix(k, "mailboxIds/#"):
				k = "mailboxIds/" + resolve(strings.TrimPrefix(k, "mailboxIds/"))
			case k == "mailboxIds":
				if m, ok := v.(map[string]any); ok {
					ids := make(map[string]any, len(m))
					for mid, b := range m {
						ids[resolve(mid)] = b
					}
					v = ids
				}
			}
			if _, dup := out[k]; dup {
				out = nil
				break
			}
			out[k] = v
		}
		if out == nil {
			continue
		}
		if b, err := json.Marshal(out); err == nil {
			update[id] = b
		}
	}
}

// preparedCreate is an Email/set create whose message was built, stored
// as a blob and parsed before the transaction.
type preparedCreate struct {
	obj   map[string]any
	facts *emailRecord
	blob  store.BlobInfo
	serr  *jmap.SetError
}

// emailSet is the standard /set for emails (RFC 8621 §4.6): creates build
// a message from the Email's properties; updates change keywords and
// mailboxIds; destroys remove emails. Creates commit first, then updates
// and destroys, as RFC 8620 §5.3 orders them.
func emailSet(ctx context.Context, c *jmap.Call) (any, error) {
	// Its writes (the messages of creates, the records) have no effect
	// outside the store: the request's one wait for the disk covers them,
	// with an EmailSubmission/set that sends the draft. The implicit
	// Email/set of an EmailSubmission/set (onSuccessUpdateEmail) waits
	// itself, so that a failed wait is never the submission's answer.
	if c.Name == "Email/set" {
		ctx = c.SyncLater(ctx)
	}
	var args jmap.SetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	acct, err := c.WritableAccount(ctx, args.AccountID, CapMail)
	if err != nil {
		return nil, err
	}
	if err := args.CheckSize(c.Limits()); err != nil {
		return nil, err
	}
	normalizeEmailPatches(c, args.Update)
	if len(args.Create.Keys) == 0 {
		return emailType.SetWith(ctx, c, &args)
	}
	preps := make([]*preparedCreate, len(args.Create.Keys))
	for i, cid := range args.Create.Keys {
		p := &preparedCreate{}
		preps[i] = p
		if err := json.Unmarshal(args.Create.Values[cid], &p.obj); err != nil || p.obj == nil {
			p.serr = jmap.InvalidProperties("the email is not a JSON object")
			continue
		}
		b := &builder{ctx: ctx, c: c, acct: acct.ID}
		raw, serr := b.buildMessage(p.obj)
		if serr != nil {
			p.serr = serr
			continue
		}
		p.blob, err = c.Store().Blobs().Upload(ctx, acct.ID, "message/rfc822", bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			return nil, err
		}
		msg, err := mime.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("parse the message just built: %w", err)
		}
		p.facts = emailFacts(msg)
	}
	resp := &jmap.SetResponse{AccountID: args.AccountID}
	created := map[string]map[string]any{}
	notCreated := map[string]*jmap.SetError{}
	changes, err := c.Store().Update(ctx, func(tx store.Tx) error {
		clear(created)
		clear(notCreated)
		var err error
		if resp.OldState, err = jmap.CheckState(tx, acct.ID, "Email", args.IfInState, ""); err != nil {
			return err
		}
		cnt := newCounter(tx, acct.ID)
		for i, cid := range args.Create.Keys {
			p := preps[i]
			if p.serr != nil {
				notCreated[cid] = p.serr
				continue
			}
			obj := p.obj
			access, err := callerAccess(ctx, tx, acct.ID)
			if err != nil {
				return err
			}
			if serr := checkAddRights(access, obj["mailboxIds"], c.ResolveID); serr != nil {
				notCreated[cid] = serr
				continue
			}
			c1, serr, err := newEmail(tx, acct.ID, cnt, p.facts, p.blob, obj["mailboxIds"], obj["keywords"], c.ResolveID,
				func() (time.Time, *jmap.SetError) {
					v, ok := obj["receivedAt"]
					if !ok || v == nil {
						return time.Now(), nil
					}
					s, _ := v.(string)
					t, ok := parseUTCDate(s)
					if !ok {
						return time.Time{}, jmap.InvalidProperties("receivedAt must be a UTCDate", "receivedAt")
					}
					return t, nil
				})
			if err != nil {
				return err
			}
			if serr != nil {
				notCreated[cid] = serr
				continue
			}
			created[cid] = c1
		}
		return cnt.flush()
	})
	if err != nil {
		return nil, err
	}
	for cid, v := range created {
		c.Created(cid, v["id"].(string))
	}
	resp.NewState = jmap.NewState(changes, acct.ID, "Email", resp.OldState)
	// Updates and destroys, if any, run after the creates they may name;
	// without them no second commit is made.
	if len(args.Update) > 0 || (args.Destroy != nil && len(*args.Destroy) > 0) {
		rest := args
		rest.Create, rest.IfInState = jmap.OrderedObjects{}, nil
		later, err := emailType.SetWith(ctx, c, &rest)
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
	return resp, nil
}

func threadGet(ctx context.Context, c *jmap.Call) (any, error) {
	var args jmap.GetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	acct, err := c.Account(ctx, args.AccountID, CapMail)
	if err != nil {
		return nil, err
	}
	if args.Properties != nil {
		for _, p := range *args.Properties {
			if p != "id" && p != "emailIds" {
				return nil, jmap.InvalidArguments("unknown property %q", p)
			}
		}
	}
	if args.IDs == nil {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "give the ids of the threads to fetch")
	}
	if len(*args.IDs) > c.Limits().MaxObjectsInGet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
	}
	resp := &jmap.GetResponse{AccountID: args.AccountID, List: []json.RawMessage{}, NotFound: []string{}}
	err = c.Store().View(ctx, func(tx store.Tx) error {
		st, err := tx.State(acct.ID, "Thread")
		if err != nil {
			return err
		}
		resp.State = jmap.FormatState(uint64(st))
		access, err := callerAccess(ctx, tx, acct.ID)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, raw := range *args.IDs {
			if seen[raw] {
				continue
			}
			seen[raw] = true
			id, _ := c.ResolveID(raw)
			t, err := loadThread(tx, acct.ID, id)
			if errors.Is(err, store.ErrNotFound) {
				resp.NotFound = append(resp.NotFound, raw)
				continue
			} else if err != nil {
				return err
			}
			// RFC 8621 §9.5: only the emails the caller may read.
			ids, err := threadReadable(tx, access, acct.ID, t)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				resp.NotFound = append(resp.NotFound, raw)
				continue
			}
			out := map[string]any{"id": t.ID}
			if args.Properties == nil || slices.Contains(*args.Properties, "emailIds") {
				out["emailIds"] = ids
			}
			b, err := json.Marshal(out)
			if err != nil {
				return err
			}
			resp.List = append(resp.List, b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// lookupEmailBlob finds the emails whose message is the blob.
func lookupEmailBlob(ctx context.Context, tx store.Tx, acct store.AccountID, blob store.BlobID) ([]string, error) {
	var out []string
	for o, err := range tx.Scan(acct, "Email") {
		if err != nil {
			return nil, err
		}
		var e struct {
			BlobID string `json:"blobId"`
		}
		if json.Unmarshal(o.Data, &e) == nil && e.BlobID == string(blob) {
			out = append(out, o.ID)
		}
	}
	return out, nil
}

// lookupThreadBlob finds the threads of the emails whose message is the
// blob.
func lookupThreadBlob(ctx context.Context, tx store.Tx, acct store.AccountID, blob store.BlobID) ([]string, error) {
	ids, err := lookupEmailBlob(ctx, tx, acct, blob)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		e, err := loadEmail(tx, acct, id)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, e.ThreadID) {
			out = append(out, e.ThreadID)
		}
	}
	return out, nil
}

// chunkBytes bounds what the emails one transaction of an Email/import
// or Email/copy stores, reckoned in header octets (import) or record
// octets (copy): their records and indexes grow with them (addresses,
// references), and a store transaction holds a few MB.
const chunkBytes = 1 << 20

// importChunks cuts the sorted creation ids of an import into runs whose
// messages' header octets stay within chunkBytes.
func importChunks(cids []string, items map[string]*parsedImport) [][]string {
	return chunksOf(cids, func(cid string) int {
		if p := items[cid]; p.msg != nil {
			return p.msg.HeaderSize()
		}
		return 0
	})
}

// chunksOf cuts ids into runs, in order, whose weights (each plus 1024)
// add up to at most chunkBytes; a run has at least one id, and no ids
// make one empty run.
func chunksOf(ids []string, weight func(id string) int) [][]string {
	var out [][]string
	start, size := 0, 0
	for i, id := range ids {
		n := 1024 + weight(id)
		if i > start && size+n > chunkBytes {
			out = append(out, ids[start:i])
			start, size = i, 0
		}
		size += n
	}
	return append(out, ids[start:])
}

// addChunk records in created and notCreated, the answer of an import or
// copy that commits in chunks, what one chunk did (its changes when it
// changed a state go to newest), and reports whether it committed. A
// chunk that failed after an earlier one committed is serverFail for each
// of its ids, and the earlier ones stay; a failed first chunk stored
// nothing and its error is returned, to fail the call.
func addChunk(ctx context.Context, acct store.AccountID, what string, chunk []string, first bool, err error,
	created map[string]map[string]any, notCreated map[string]*jmap.SetError, newest *[]store.StateChange,
	chunkCreated map[string]map[string]any, chunkNotCreated map[string]*jmap.SetError, changes []store.StateChange) (bool, error) {
	if err != nil {
		if first {
			return false, err
		}
		zerolog.Ctx(ctx).Error().Err(err).Str("account", string(acct)).Msg(what + " chunk")
		for _, cid := range chunk {
			notCreated[cid] = jmap.NewSetError(jmap.ErrServerFail, "")
		}
		return false, nil
	}
	for cid, v := range chunkCreated {
		created[cid] = v
	}
	for cid, v := range chunkNotCreated {
		notCreated[cid] = v
	}
	if len(changes) > 0 {
		*newest = changes
	}
	return true, nil
}
