package methods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// CapMail is the JMAP Mail capability (RFC 8621 §1.3.1).
const CapMail = "urn:ietf:params:jmap:mail"

// Limits of the mail capability this server advertises.
const (
	maxMailboxDepth    = 20
	maxSizeMailboxName = 255
)

// mailCapability is the account-level object of CapMail (RFC 8621 §1.3.1).
type mailCapability struct {
	MaxMailboxesPerEmail       *int     `json:"maxMailboxesPerEmail"`
	MaxMailboxDepth            int      `json:"maxMailboxDepth"`
	MaxSizeMailboxName         int      `json:"maxSizeMailboxName"`
	MaxSizeAttachmentsPerEmail int64    `json:"maxSizeAttachmentsPerEmail"`
	EmailQuerySortOptions      []string `json:"emailQuerySortOptions"`
	MayCreateTopLevelMailbox   bool     `json:"mayCreateTopLevelMailbox"`
}

// mailboxRoles are the IANA "IMAP Mailbox Name Attributes" usable as roles
// (RFC 8621 §2, RFC 8457), lower-cased.
var mailboxRoles = []string{"all", "archive", "drafts", "flagged", "important", "inbox", "junk", "sent",
	"snoozed", "subscribed", "trash", "memos", "scheduled"}

// defaultMailboxes are created in every new account (issue: Inbox, Drafts,
// Sent, Archive, Junk and Trash with their roles).
var defaultMailboxes = []struct {
	name, role string
	order      int
}{
	{"Inbox", "inbox", 1}, {"Drafts", "drafts", 2}, {"Sent", "sent", 3},
	{"Archive", "archive", 4}, {"Junk", "junk", 5}, {"Trash", "trash", 6},
}

// countProps are the server-maintained counts of a Mailbox.
var countProps = []string{"totalEmails", "unreadEmails", "totalThreads", "unreadThreads"}

// allRights is what the owner of an account may do in each mailbox.
var allRights = map[string]any{
	"mayReadItems": true, "mayAddItems": true, "mayRemoveItems": true, "maySetSeen": true,
	"maySetKeywords": true, "mayCreateChild": true, "mayRename": true, "mayDelete": true, "maySubmit": true,
}

// mailboxType is the Mailbox data type (RFC 8621 §2). Its records hold
// everything but the per-user isSubscribed and myRights, which View adds.
var mailboxType = &jmap.Type{
	Name:       "Mailbox",
	Capability: CapMail,
	Properties: []string{"id", "name", "parentId", "role", "sortOrder", "totalEmails", "unreadEmails",
		"totalThreads", "unreadThreads", "myRights", "isSubscribed", "shareWith"},
	ServerSet: append([]string{"myRights"}, countProps...),
	PerUser:   []string{"myRights", "isSubscribed", "shareWith"},
	IDRefs:    []string{"parentId"},
	Defaults: func() map[string]any {
		return map[string]any{"parentId": nil, "role": nil, "sortOrder": float64(0), "isSubscribed": true, "shareWith": nil,
			"totalEmails": float64(0), "unreadEmails": float64(0), "totalThreads": float64(0), "unreadThreads": float64(0)}
	},
	View:                    viewMailbox,
	FilterChanges:           filterMailboxChanges,
	OptIn:                   map[string]string{"shareWith": CapMailShare},
	PerUserInReadOnly:       true,
	Validate:                validateMailbox,
	OnDestroy:               destroyMailbox,
	Filter:                  mailboxFilter,
	ReportUpdatedProperties: true,
	CountProperties:         countProps,
	Sort: map[string]func(a, b map[string]any, coll string) int{
		"sortOrder": func(a, b map[string]any, _ string) int { return cmpNum(a["sortOrder"], b["sortOrder"]) },
		"name": func(a, b map[string]any, coll string) int {
			r, _ := jmap.CompareStrings(coll, str(a["name"]), str(b["name"]))
			return r
		},
	},
}

func cmpNum(a, b any) int {
	x, _ := a.(float64)
	y, _ := b.(float64)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func registerMailbox(r *jmap.Registry, accts *Accounts) {
	r.AddCapability(CapMail, struct{}{})
	r.AddCapability(CapMailShare, struct{}{})
	lim := r.Limits
	accts.AddCapabilityFor(CapMail, func(i AccountInfo) (any, bool) {
		return mailCapability{MaxMailboxDepth: maxMailboxDepth, MaxSizeMailboxName: maxSizeMailboxName,
			MaxSizeAttachmentsPerEmail: lim.MaxSizeUpload, EmailQuerySortOptions: emailSortOptions,
			// RFC 8621 §1.3.1: top-level mailboxes are the owner's.
			MayCreateTopLevelMailbox: i.Owner}, true
	})
	// draft-ietf-jmap-mail-sharing §1.2.1: {} in every account with mail.
	accts.AddCapabilityFor(CapMailShare, func(AccountInfo) (any, bool) { return struct{}{}, true })
	accts.AddProvisioner(provisionMailboxes)
	r.Register(mailboxType, "get", "changes")
	r.Handle("Mailbox/set", CapMail, mailboxSet)
	r.Handle("Mailbox/query", CapMail, mailboxQuery)
	r.Handle("Mailbox/queryChanges", CapMail, mailboxQueryChanges)
}

// provisionMailboxes creates the default mailboxes of a new account.
func provisionMailboxes(tx store.Tx, acct store.AccountID) error {
	for _, d := range defaultMailboxes {
		id, err := tx.NewID()
		if err != nil {
			return err
		}
		m := mailboxType.Defaults()
		delete(m, "isSubscribed")
		delete(m, "shareWith")
		m["id"], m["name"], m["role"], m["sortOrder"] = id, d.name, d.role, float64(d.order)
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if err := tx.Create(acct, "Mailbox", id, b); err != nil {
			return err
		}
	}
	return nil
}

func subscriptionKey(acct store.AccountID, who store.PrincipalID, mailbox string) string {
	return "sub\x00" + string(acct) + "\x00" + string(who) + "\x00" + mailbox
}

// subscribed reports whether who subscribed to the mailbox: stored per user
// (RFC 8621 §2), true by default for the account's owner and false for
// anyone else.
func subscribed(tx store.Tx, acct store.AccountID, who store.PrincipalID, mailbox string) (bool, error) {
	v, err := tx.GetMeta(subscriptionKey(acct, who, mailbox))
	if err != nil {
		return false, err
	}
	if v == nil {
		return store.AccountID(who) == acct, nil
	}
	return string(v) == "1", nil
}

func viewMailbox(ctx context.Context, tx store.Tx, acct store.AccountID, obj map[string]any) error {
	c := jmap.CallerFrom(ctx)
	var who store.PrincipalID
	if c != nil {
		who = c.Principal
	}
	id := str(obj["id"])
	access, err := callerAccess(ctx, tx, acct)
	if err != nil {
		return err
	}
	if !access.Visible(id) {
		return jmap.ErrHidden
	}
	// A parent the caller cannot see does not exist for them: the mailbox
	// shows at the top of its visible ancestors (RFC 8621 §9.5).
	if !access.Owner {
		p := str(obj["parentId"])
		for p != "" && !access.Visible(p) {
			b, err := tx.Get(acct, "Mailbox", p)
			if err != nil {
				return err
			}
			var m struct {
				ParentID string `json:"parentId"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			p = m.ParentID
		}
		if p == "" {
			obj["parentId"] = nil
		} else {
			obj["parentId"] = p
		}
	}
	sub, err := subscribed(tx, acct, who, id)
	if err != nil {
		return err
	}
	obj["isSubscribed"] = sub
	obj["myRights"] = access.Rights(id).Map(usingShare(ctx))
	sw, err := acl.ShareWith(tx, acct, id)
	if err != nil {
		return err
	}
	if len(sw) == 0 {
		obj["shareWith"] = nil // RFC 9670 §4: null when shared with nobody
	} else {
		m := make(map[string]any, len(sw))
		for p, r := range sw {
			m[string(p)] = r.Map(true)
		}
		obj["shareWith"] = m
	}
	return nil
}

// filterMailboxChanges hides from a /changes answer the mailboxes the
// caller cannot see; one that became invisible is reported destroyed.
func filterMailboxChanges(ctx context.Context, tx store.Tx, acct store.AccountID, set *jmap.ChangeSet) error {
	access, err := callerAccess(ctx, tx, acct)
	if err != nil || access.Owner {
		return err
	}
	// Joining or leaving a group moves no mailbox, yet changes which
	// ones the caller sees.
	moved, err := acl.MembershipChangedSince(tx, access.Identities, acct, acl.MailboxState, set.Since)
	if err != nil {
		return err
	}
	if moved {
		return jmap.NewMethodError(jmap.ErrCannotCalculateChanges, "your access to this account changed")
	}
	created, updated := set.Created[:0], set.Updated[:0]
	for _, id := range set.Created {
		if access.Visible(id) {
			created = append(created, id)
		}
	}
	for _, id := range set.Updated {
		switch {
		case access.Visible(id):
			updated = append(updated, id)
		case access.Lost(id):
			set.Destroyed = append(set.Destroyed, id)
		}
	}
	destroyed := set.Destroyed[:0]
	for _, id := range set.Destroyed {
		if access.SeesAll() || access.Lost(id) {
			destroyed = append(destroyed, id)
		}
	}
	set.Created, set.Updated, set.Destroyed = created, updated, destroyed
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > maxSizeMailboxName || !utf8.ValidString(s) || strings.TrimSpace(s) == "" {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func validateMailbox(ctx context.Context, tx store.Tx, acct store.AccountID, obj, old map[string]any) *jmap.SetError {
	id := str(obj["id"])
	access, err := callerAccess(ctx, tx, acct)
	if err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if serr := checkMailboxRights(tx, acct, access, obj, old); serr != nil {
		return serr
	}
	name, ok := obj["name"].(string)
	if !ok || !validName(name) {
		return jmap.InvalidProperties(fmt.Sprintf("name must be 1 to %d octets of UTF-8 without control characters", maxSizeMailboxName), "name")
	}
	so, ok := obj["sortOrder"].(float64)
	if !ok || so < 0 || so >= 1<<31 || so != math.Trunc(so) {
		return jmap.InvalidProperties("sortOrder must be an integer from 0 to 2^31-1", "sortOrder")
	}
	var role string
	switch r := obj["role"].(type) {
	case nil:
	case string:
		if !slices.Contains(mailboxRoles, r) {
			return jmap.InvalidProperties(fmt.Sprintf("unknown role %q", r), "role")
		}
		role = r
	default:
		return jmap.InvalidProperties("role must be a string or null", "role")
	}
	if _, ok := obj["isSubscribed"].(bool); !ok {
		return jmap.InvalidProperties("isSubscribed must be a boolean", "isSubscribed")
	}
	var parent string
	switch p := obj["parentId"].(type) {
	case nil:
	case string:
		parent = p
	default:
		return jmap.InvalidProperties("parentId must be an id or null", "parentId")
	}
	all := map[string]map[string]any{}
	for o, err := range tx.Scan(acct, "Mailbox") {
		if err != nil {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
		m := map[string]any{}
		if err := json.Unmarshal(o.Data, &m); err != nil {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
		all[o.ID] = m
	}
	if parent != "" {
		if _, ok := all[parent]; !ok {
			return jmap.InvalidProperties(fmt.Sprintf("no mailbox %q", parent), "parentId")
		}
		// No loops (RFC 8621 §2), and the depth stays within the limit.
		depth := 1
		for p := parent; p != ""; depth++ {
			if p == id {
				return jmap.InvalidProperties("a mailbox cannot be its own ancestor", "parentId")
			}
			if depth >= maxMailboxDepth {
				return jmap.InvalidProperties(fmt.Sprintf("mailboxes nest at most %d deep", maxMailboxDepth), "parentId")
			}
			p = str(all[p]["parentId"])
		}
		// A move takes the descendants along, and maxMailboxDepth bounds
		// their ancestors too: "one more than the maximum number of
		// ancestors a Mailbox may have" (RFC 8621 §1.3.1).
		if old != nil && str(old["parentId"]) != parent && depth+subtreeHeight(all, id) > maxMailboxDepth {
			return jmap.InvalidProperties(fmt.Sprintf("mailboxes nest at most %d deep", maxMailboxDepth), "parentId")
		}
	}
	for oid, m := range all {
		if oid == id {
			continue
		}
		if str(m["parentId"]) == parent && m["name"] == name {
			// RFC 8621 §2: no two siblings share a name. alreadyExists is
			// RFC 8620's common error for a duplicate the server forbids,
			// with the id of the mailbox in the way; a mailbox the caller
			// cannot see is not named to them.
			if !access.Visible(oid) {
				return jmap.InvalidProperties("a sibling mailbox has this name", "name")
			}
			serr := jmap.NewSetError(jmap.SetAlreadyExists, "a sibling mailbox has this name")
			serr.ExistingID = oid
			return serr
		}
		if role != "" && m["role"] == role {
			return jmap.InvalidProperties(fmt.Sprintf("mailbox %s already has the role %q", oid, role), "role")
		}
	}
	if serr := applyShareWith(ctx, tx, acct, access, obj, old); serr != nil {
		return serr
	}
	// isSubscribed is stored per user, outside the shared record.
	c := jmap.CallerFrom(ctx)
	if c != nil {
		want := obj["isSubscribed"].(bool)
		cur, err := subscribed(tx, acct, c.Principal, id)
		if err != nil {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
		if old == nil || want != cur {
			v := "0"
			if want {
				v = "1"
			}
			if err := tx.PutMeta(subscriptionKey(acct, c.Principal, id), []byte(v)); err != nil {
				return jmap.NewSetError(jmap.ErrServerFail, "")
			}
			// Subscribing in someone else's account can change which
			// accounts the session lists (RFC 9670 §1.4).
			if !access.Owner {
				if err := acl.BumpEpoch(tx); err != nil {
					return jmap.NewSetError(jmap.ErrServerFail, "")
				}
			}
		}
	}
	return nil
}

// subtreeHeight returns how many levels of descendants the mailbox id has
// among all (0 for a mailbox without children).
func subtreeHeight(all map[string]map[string]any, id string) int {
	kids := map[string][]string{}
	for oid, m := range all {
		if p := str(m["parentId"]); p != "" {
			kids[p] = append(kids[p], oid)
		}
	}
	var height func(string) int
	height = func(id string) int {
		h := 0
		for _, k := range kids[id] {
			h = max(h, 1+height(k))
		}
		return h
	}
	return height(id)
}

type ctxKey int

const onDestroyRemoveEmailsKey ctxKey = iota

func destroyMailbox(ctx context.Context, tx store.Tx, acct store.AccountID, obj map[string]any) *jmap.SetError {
	id := str(obj["id"])
	removeEmails, _ := ctx.Value(onDestroyRemoveEmailsKey).(bool)
	total, _ := obj["totalEmails"].(float64)
	role, _ := obj["role"].(string)
	if serr := mayDestroyMailbox(ctx, tx, acct, id, role, total > 0, removeEmails); serr != nil {
		return serr
	}
	if removeEmails {
		if _, err := removeMailboxEmails(tx, acct, id, 0); err != nil {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
	}
	// Subscriptions of every user to this mailbox go with it.
	prefix := "sub\x00" + string(acct) + "\x00"
	var keys []string
	for m, err := range tx.ScanMeta(prefix) {
		if err != nil {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
		if strings.HasSuffix(m.Key, "\x00"+id) {
			keys = append(keys, m.Key)
		}
	}
	for _, k := range keys {
		if err := tx.DeleteMeta(k); err != nil {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
	}
	if err := acl.ForgetMailbox(tx, acct, id); err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	return nil
}

// mayDestroyMailbox says why the caller may not destroy mailbox id of
// acct (RFC 8621 §2.5), or nil: hasEmails tells whether it holds emails,
// removeEmails whether the call takes them out.
func mayDestroyMailbox(ctx context.Context, tx store.Tx, acct store.AccountID, id, role string, hasEmails, removeEmails bool) *jmap.SetError {
	access, err := callerAccess(ctx, tx, acct)
	if err != nil {
		return jmap.NewSetError(jmap.ErrServerFail, "")
	}
	if !access.Rights(id).Delete {
		return jmap.NewSetError(jmap.SetForbidden, "you may not delete this mailbox")
	}
	for o, err := range tx.Scan(acct, "Mailbox") {
		if err != nil {
			return jmap.NewSetError(jmap.ErrServerFail, "")
		}
		var m struct {
			ParentID *string `json:"parentId"`
		}
		if json.Unmarshal(o.Data, &m) == nil && m.ParentID != nil && *m.ParentID == id {
			return jmap.NewSetError("mailboxHasChild", "the mailbox has child mailboxes") // RFC 8621 §2.5
		}
	}
	if hasEmails && !removeEmails {
		return jmap.NewSetError("mailboxHasEmail", "the mailbox has emails") // RFC 8621 §2.5
	}
	if role == "inbox" {
		return jmap.NewSetError(jmap.SetForbidden, "the inbox cannot be destroyed")
	}
	if removeEmails && !access.Rights(id).RemoveItems {
		return jmap.NewSetError(jmap.SetForbidden, "you may not remove the emails of this mailbox")
	}
	return nil
}

// emptyingPart is how many emails one transaction takes out of a mailbox
// that a Mailbox/set destroys with onDestroyRemoveEmails.
const emptyingPart = 200

// emptyBeforeDestroy takes the emails out of each mailbox that args
// destroys with onDestroyRemoveEmails, emptyingPart at a time (fewer when
// that is more than the store holds), each part its own transaction,
// while the destroy is allowed: the destroy that follows in the /set then
// fits one transaction whatever the mailbox held (a thousand large emails
// do not). Taking each email out is what the destroy would do (RFC 8621
// §2.5); a call with ifInState is left whole, since the parts change the
// Mailbox state it names.
func emptyBeforeDestroy(ctx context.Context, c *jmap.Call, args *mailboxSetArgs) error {
	if !args.OnDestroyRemoveEmails || args.Destroy == nil || args.IfInState != nil {
		return nil
	}
	acct, err := c.WritableAccount(ctx, args.AccountID, CapMail)
	if err != nil {
		return nil // the /set answers it
	}
	for _, raw := range *args.Destroy {
		id, ok := c.ResolveID(raw)
		if !ok {
			continue
		}
		// Bounded, in case emails taken out were listed again.
		part := emptyingPart
		for range 1 << 20 {
			removed := 0
			_, err := c.Store().Update(ctx, func(tx store.Tx) error {
				removed = 0
				b, err := tx.Get(acct.ID, "Mailbox", id)
				if err != nil {
					return nil // not there (or hidden): the /set answers it
				}
				role, err := loadMailboxRole(b)
				if err != nil {
					return err
				}
				if mayDestroyMailbox(ctx, tx, acct.ID, id, role, true, true) != nil {
					return nil
				}
				removed, err = removeMailboxEmails(tx, acct.ID, id, part)
				return err
			})
			if errors.Is(err, store.ErrTxnTooBig) && part > 1 {
				// Indexed emails take their search postings with them:
				// fewer at a time.
				part /= 2
				continue
			}
			if err != nil {
				return err
			}
			if removed < part {
				break
			}
		}
	}
	return nil
}

type mailboxSetArgs struct {
	jmap.SetArgs
	OnDestroyRemoveEmails bool `json:"onDestroyRemoveEmails"`
}

// mailboxSet is the standard /set with onDestroyRemoveEmails (RFC 8621 §2.5).
func mailboxSet(ctx context.Context, c *jmap.Call) (any, error) {
	var args mailboxSetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, onDestroyRemoveEmailsKey, args.OnDestroyRemoveEmails)
	if err := emptyBeforeDestroy(ctx, c, &args); err != nil {
		return nil, err
	}
	resp, err := mailboxType.SetWith(ctx, c, &args.SetArgs)
	if notices, _ := c.Memo(noticesMemo{}).([]shareNotice); err == nil && len(notices) > 0 {
		if err := deliverNotices(ctx, c.Store(), notices); err != nil {
			zerolog.Ctx(ctx).Error().Err(err).Msg("share notices")
		}
	}
	return resp, err
}

func mailboxFilter(cond map[string]any) (func(map[string]any) bool, error) {
	var tests []func(map[string]any) bool
	bad := func(k, want string) error {
		return jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("%s must be %s", k, want))
	}
	for k, v := range cond {
		switch k {
		case "parentId":
			if _, ok := v.(string); v != nil && !ok {
				return nil, bad(k, "an id or null")
			}
			tests = append(tests, func(o map[string]any) bool { return o["parentId"] == v })
		case "name":
			s, ok := v.(string)
			if !ok {
				return nil, bad(k, "a string")
			}
			s = strings.ToLower(s)
			tests = append(tests, func(o map[string]any) bool { return strings.Contains(strings.ToLower(str(o["name"])), s) })
		case "role":
			if _, ok := v.(string); v != nil && !ok {
				return nil, bad(k, "a string or null")
			}
			tests = append(tests, func(o map[string]any) bool { return o["role"] == v })
		case "hasAnyRole":
			b, ok := v.(bool)
			if !ok {
				return nil, bad(k, "a boolean")
			}
			tests = append(tests, func(o map[string]any) bool { return (o["role"] != nil) == b })
		case "isSubscribed":
			b, ok := v.(bool)
			if !ok {
				return nil, bad(k, "a boolean")
			}
			tests = append(tests, func(o map[string]any) bool { return o["isSubscribed"] == b })
		default:
			return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("unknown condition %q", k))
		}
	}
	return jmap.AllOf(tests), nil
}

type mailboxQueryArgs struct {
	jmap.QueryArgs
	SortAsTree   bool `json:"sortAsTree"`
	FilterAsTree bool `json:"filterAsTree"`
}

// mailboxTree returns the ids of the mailboxes matching the query, sorted,
// honouring sortAsTree and filterAsTree (RFC 8621 §2.3).
func mailboxTree(ctx context.Context, c *jmap.Call, tx store.Tx, acct store.AccountID, filter json.RawMessage, sorts []jmap.Comparator, asTree, filterTree bool) ([]string, error) {
	f, err := jmap.CompileFilter(filter, mailboxType.Filter)
	if err != nil {
		return nil, err
	}
	cmp, err := mailboxType.Sorter(sorts)
	if err != nil {
		return nil, err
	}
	all, err := mailboxType.LoadAll(ctx, tx, acct)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]map[string]any, len(all))
	for _, m := range all {
		byID[str(m["id"])] = m
	}
	match := map[string]bool{}
	for _, m := range all {
		match[str(m["id"])] = f(m)
	}
	var keep []map[string]any
	for _, m := range all {
		id := str(m["id"])
		if !match[id] {
			continue
		}
		if filterTree {
			ok := true
			for p := str(m["parentId"]); p != "" && ok; p = str(byID[p]["parentId"]) {
				ok = match[p]
			}
			if !ok {
				continue
			}
		}
		keep = append(keep, m)
	}
	if !asTree {
		slices.SortStableFunc(keep, cmp)
		ids := make([]string, len(keep))
		for i, m := range keep {
			ids[i] = str(m["id"])
		}
		return ids, nil
	}
	// Sort as a tree: siblings by the comparators, each followed by its
	// descendants. Mailboxes whose parent is not in the results attach at
	// the top of the nearest kept ancestor chain.
	kept := map[string]bool{}
	for _, m := range keep {
		kept[str(m["id"])] = true
	}
	children := map[string][]map[string]any{}
	for _, m := range keep {
		p := str(m["parentId"])
		for p != "" && !kept[p] {
			p = str(byID[p]["parentId"])
		}
		children[p] = append(children[p], m)
	}
	var ids []string
	var walk func(parent string)
	walk = func(parent string) {
		kids := children[parent]
		slices.SortStableFunc(kids, cmp)
		for _, m := range kids {
			ids = append(ids, str(m["id"]))
			walk(str(m["id"]))
		}
	}
	walk("")
	return ids, nil
}

func mailboxQuery(ctx context.Context, c *jmap.Call) (any, error) {
	var args mailboxQueryArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	return jmap.RunQuery(ctx, c, &args.QueryArgs, CapMail, "Mailbox", nil, func(tx store.Tx, acct store.AccountID) ([]string, error) {
		return mailboxTree(ctx, c, tx, acct, args.Filter, args.Sort, args.SortAsTree, args.FilterAsTree)
	})
}

type mailboxQueryChangesArgs struct {
	jmap.QueryChangesArgs
	SortAsTree   bool `json:"sortAsTree"`
	FilterAsTree bool `json:"filterAsTree"`
}

func mailboxQueryChanges(ctx context.Context, c *jmap.Call) (any, error) {
	var args mailboxQueryChangesArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	return jmap.RunQueryChanges(ctx, c, &args.QueryChangesArgs, CapMail, "Mailbox", func(tx store.Tx, acct store.AccountID, set *jmap.ChangeSet) ([]string, error) {
		if err := filterMailboxChanges(ctx, tx, acct, set); err != nil {
			return nil, err
		}
		ids, err := mailboxTree(ctx, c, tx, acct, args.Filter, args.Sort, args.SortAsTree, args.FilterAsTree)
		if err != nil {
			return nil, err
		}
		if args.SortAsTree || args.FilterAsTree {
			// A change to one mailbox can move or hide its descendants,
			// which the log does not list: report every mailbox as
			// changed when anything changed, so that the hidden ones are
			// removed too. RFC 8620 §5.6 allows this: "the server MAY
			// return the ids of extra Foos in addition that may have been
			// in the old results but are not in the new results".
			if len(set.Created)+len(set.Updated)+len(set.Destroyed) > 0 {
				access, err := callerAccess(ctx, tx, acct)
				if err != nil {
					return nil, err
				}
				for o, err := range tx.Scan(acct, "Mailbox") {
					if err != nil {
						return nil, err
					}
					if access.Visible(o.ID) {
						set.Updated = append(set.Updated, o.ID)
					}
				}
			}
		}
		return ids, nil
	})
}

// loadMailboxRole reads the role of a stored mailbox ("" when none).
func loadMailboxRole(b []byte) (string, error) {
	var m struct {
		Role *string `json:"role"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", err
	}
	if m.Role == nil {
		return "", nil
	}
	return *m.Role, nil
}

// removeMailboxEmails takes the emails, every one or at most limit (when
// above 0), out of a mailbox being destroyed: emails in other mailboxes
// stay there, emails only in this one are destroyed (RFC 8621 §2.5
// onDestroyRemoveEmails). It returns how many it took out.
func removeMailboxEmails(tx store.Tx, acct store.AccountID, mbox string, limit int) (int, error) {
	var ids []string
	for m, err := range tx.ScanMeta(indexPrefix(acct, mbox)) {
		if err != nil {
			return 0, err
		}
		ids = append(ids, indexID(m.Key))
		if len(ids) == limit {
			break
		}
	}
	return len(ids), removeEmailsFrom(tx, acct, mbox, ids)
}

// removeEmailsFrom takes the emails ids out of mailbox mbox.
func removeEmailsFrom(tx store.Tx, acct store.AccountID, mbox string, ids []string) error {
	for _, id := range ids {
		e, err := loadEmail(tx, acct, id)
		if err != nil {
			return err
		}
		if len(e.MailboxIDs) == 1 {
			if err := removeEmail(tx, acct, e); err != nil {
				return err
			}
			if err := tx.Delete(acct, "Email", id); err != nil {
				return err
			}
			continue
		}
		after := make(map[string]bool, len(e.MailboxIDs)-1)
		for m := range e.MailboxIDs {
			if m != mbox {
				after[m] = true
			}
		}
		cnt := newCounter(tx, acct)
		next := *e
		next.MailboxIDs = after
		if err := cnt.change(membershipOf(e), membershipOf(&next)); err != nil {
			return err
		}
		if err := cnt.flush(); err != nil {
			return err
		}
		if err := indexMove(tx, acct, &next, e.MailboxIDs, after); err != nil {
			return err
		}
		b, err := marshalEmail(&next)
		if err != nil {
			return err
		}
		if err := tx.Put(acct, "Email", id, b); err != nil {
			return err
		}
	}
	return nil
}
