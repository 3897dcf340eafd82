package jmap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jmapd/jmapd/store"
)

// Type describes a record type stored as a JSON object, so that the generic
// /get /changes /set /copy /query /queryChanges methods can serve it.
type Type struct {
	// Name is the data type name, e.g. "Mailbox".
	Name string
	// Capability is the URN a request must use to call the type's methods.
	Capability string
	// Properties lists every property of the type, "id" included. Records
	// the generic methods write hold exactly these (and no PerUser ones),
	// which lets /get return them without decoding.
	Properties []string
	// ServerSet lists properties the client may not set ("id" always is).
	ServerSet []string
	// Immutable lists properties that may not change after creation.
	Immutable []string
	// IDRefs lists Id-typed properties (a string or an array of strings)
	// whose "#creationId" values refer to records created earlier in the
	// request (RFC 8620 §5.3).
	IDRefs []string
	// Defaults returns the values of properties a new record gets when the
	// client omits them, server-set ones included.
	Defaults func() map[string]any
	// Validate checks a whole record before it is written: old is nil on
	// create. It may fill server-set values into obj.
	Validate func(ctx context.Context, tx store.Tx, acct store.AccountID, obj, old map[string]any) *SetError
	// OnDestroy runs before a record is destroyed; a SetError refuses it.
	OnDestroy func(ctx context.Context, tx store.Tx, acct store.AccountID, obj map[string]any) *SetError
	// Filter compiles one FilterCondition; unknown or malformed conditions
	// answer unsupportedFilter. Nil means the type has no filters.
	Filter func(cond map[string]any) (func(obj map[string]any) bool, error)
	// Sort compares two records by a property under a collation; nil or a
	// missing property answers unsupportedSort.
	Sort map[string]func(a, b map[string]any, collation string) int
	// ReportUpdatedProperties makes /changes answer updatedProperties
	// (RFC 8621 §2.2): the properties changed, when they are all among
	// CountProperties, and null otherwise.
	ReportUpdatedProperties bool
	CountProperties         []string
	// PerUser lists properties that differ per caller (myRights,
	// isSubscribed): View supplies them, they are never stored in the
	// record, and Validate stores what the caller sets.
	PerUser []string
	// View adds the PerUser properties of a record for the caller in ctx
	// (jmap.CallerFrom) before it is returned, filtered or sorted. It
	// returns ErrHidden for a record the caller may not see, which then
	// behaves as if it did not exist (RFC 8621 §9.5).
	View func(ctx context.Context, tx store.Tx, acct store.AccountID, obj map[string]any) error
	// FilterChanges, when set, edits a /changes result for the caller in
	// ctx: ids of records they cannot see must not appear, and records
	// that became invisible are reported destroyed.
	FilterChanges func(ctx context.Context, tx store.Tx, acct store.AccountID, set *ChangeSet) error
	// PerUserInReadOnly lets /set run in an account that is read-only for
	// the caller, for their PerUser properties (subscribing to a shared
	// mailbox, RFC 9670 §1.4); Validate must refuse anything else.
	PerUserInReadOnly bool
	// OptIn maps properties that an extension adds to the capability
	// that must be in "using" for them to exist (RFC 8620 §1.8).
	OptIn map[string]string
}

// ErrHidden is returned by a Type's View for a record the caller may not
// see; the generic methods answer as if it did not exist.
var ErrHidden = errors.New("jmap: record hidden from the caller")

// view decodes a stored record and adds its per-caller properties.
func (t *Type) view(ctx context.Context, tx store.Tx, acct store.AccountID, data []byte) (map[string]any, error) {
	obj, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	if t.View != nil {
		if err := t.View(ctx, tx, acct, obj); err != nil {
			return nil, err
		}
	}
	return obj, nil
}

// LoadAll returns every record of the type in acct as the caller sees it.
func (t *Type) LoadAll(ctx context.Context, tx store.Tx, acct store.AccountID) ([]map[string]any, error) {
	var out []map[string]any
	n := 0
	for o, err := range tx.Scan(acct, t.Name) {
		if err != nil {
			return nil, err
		}
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		obj, err := t.view(ctx, tx, acct, o.Data)
		if errors.Is(err, ErrHidden) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}

// hasProperty reports whether p is a property of the type for the call in
// ctx: listed, and when it belongs to an extension, opted into.
func (t *Type) hasProperty(ctx context.Context, p string) bool {
	if !slices.Contains(t.Properties, p) {
		return false
	}
	if urn, ok := t.OptIn[p]; ok {
		c := CallFrom(ctx)
		return c != nil && c.Using[urn]
	}
	return true
}

// properties returns the type's properties for the call in ctx.
func (t *Type) properties(ctx context.Context) []string {
	if len(t.OptIn) == 0 {
		return t.Properties
	}
	out := make([]string, 0, len(t.Properties))
	for _, p := range t.Properties {
		if t.hasProperty(ctx, p) {
			out = append(out, p)
		}
	}
	return out
}

// Register adds the type's generic methods to r: get, changes, set, copy,
// query and queryChanges, each only when listed in methods.
func (r *Registry) Register(t *Type, methods ...string) {
	for _, m := range methods {
		var h Handler
		switch m {
		case "get":
			h = t.get
		case "changes":
			h = t.changes
		case "set":
			h = t.set
		case "copy":
			h = t.copy
		case "query":
			h = t.query
		case "queryChanges":
			h = t.queryChanges
		default:
			panic("jmap: no generic method " + m)
		}
		r.Handle(t.Name+"/"+m, t.Capability, h)
	}
}

// decodeObject reads a stored record.
func decodeObject(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("stored record: %w", err)
	}
	return m, nil
}

// GetArgs are the arguments of /get (RFC 8620 §5.1).
type GetArgs struct {
	AccountID  string    `json:"accountId"`
	IDs        *[]string `json:"ids"`
	Properties *[]string `json:"properties"`
}

// GetResponse is the response of /get.
type GetResponse struct {
	AccountID string            `json:"accountId"`
	State     string            `json:"state"`
	List      []json.RawMessage `json:"list"`
	NotFound  []string          `json:"notFound"`
}

func (t *Type) get(ctx context.Context, c *Call) (any, error) {
	var args GetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	acct, err := c.Account(ctx, args.AccountID, t.Capability)
	if err != nil {
		return nil, err
	}
	props := t.properties(ctx)
	if args.Properties != nil {
		props = []string{"id"}
		for _, p := range *args.Properties {
			if !t.hasProperty(ctx, p) {
				return nil, InvalidArguments("unknown property %q", p)
			}
			if p != "id" {
				props = append(props, p)
			}
		}
	}
	if args.IDs != nil && len(*args.IDs) > c.Limits().MaxObjectsInGet {
		return nil, NewMethodError(ErrRequestTooLarge, fmt.Sprintf("at most %d ids", c.Limits().MaxObjectsInGet))
	}
	resp := &GetResponse{AccountID: args.AccountID, List: []json.RawMessage{}, NotFound: []string{}}
	err = c.Store().View(ctx, func(tx store.Tx) error {
		st, err := tx.State(acct.ID, t.Name)
		if err != nil {
			return err
		}
		resp.State = FormatState(uint64(st))
		// emit adds a record to the list; it returns ErrHidden for one the
		// caller may not see.
		emit := func(data []byte) error {
			if t.View == nil {
				return emitRaw(resp, data, props, args.Properties == nil && len(t.OptIn) == 0)
			}
			obj, err := t.view(ctx, tx, acct.ID, data)
			if err != nil {
				return err
			}
			b, err := json.Marshal(Pick(obj, props))
			if err != nil {
				return err
			}
			resp.List = append(resp.List, b)
			return nil
		}
		if args.IDs == nil {
			n := 0
			for o, err := range tx.Scan(acct.ID, t.Name) {
				if err != nil {
					return err
				}
				if n++; n > c.Limits().MaxObjectsInGet {
					return NewMethodError(ErrRequestTooLarge, "too many records to return them all; give ids")
				}
				if err := emit(o.Data); err != nil && !errors.Is(err, ErrHidden) {
					return err
				}
			}
			return nil
		}
		seen := map[string]bool{}
		for _, raw := range *args.IDs {
			if seen[raw] {
				continue
			}
			seen[raw] = true
			id, ok := c.ResolveID(raw)
			if !ok {
				resp.NotFound = append(resp.NotFound, raw)
				continue
			}
			data, err := tx.Get(acct.ID, t.Name, id)
			if errors.Is(err, store.ErrNotFound) {
				resp.NotFound = append(resp.NotFound, raw)
				continue
			}
			if err != nil {
				return err
			}
			if err := emit(data); errors.Is(err, ErrHidden) {
				resp.NotFound = append(resp.NotFound, raw)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Pick returns the properties props of obj, as /get lists them: a
// property obj lacks is null.
func Pick(obj map[string]any, props []string) map[string]any {
	out := make(map[string]any, len(props))
	for _, p := range props {
		out[p] = obj[p]
	}
	return out
}

// ChangesArgs are the arguments of /changes (RFC 8620 §5.2).
type ChangesArgs struct {
	AccountID  string `json:"accountId"`
	SinceState string `json:"sinceState"`
	MaxChanges *int   `json:"maxChanges"`
}

// ChangesResponse is the response of /changes.
type ChangesResponse struct {
	AccountID         string    `json:"accountId"`
	OldState          string    `json:"oldState"`
	NewState          string    `json:"newState"`
	HasMoreChanges    bool      `json:"hasMoreChanges"`
	Created           []string  `json:"created"`
	Updated           []string  `json:"updated"`
	Destroyed         []string  `json:"destroyed"`
	UpdatedProperties *[]string `json:"updatedProperties,omitempty"`
}

// changeState is a position in a change log: every entry up to State, plus
// the first Skip ids of the next entry. It is written "S" or "S.K"; the
// second form lets maxChanges cut inside one large commit.
type changeState struct {
	State store.State
	Skip  int
}

func parseChangeState(s string) (changeState, bool) {
	st, skip, cut := strings.Cut(s, ".")
	n, err := strconv.ParseUint(st, 10, 64)
	if err != nil || (len(st) > 1 && st[0] == '0') {
		return changeState{}, false
	}
	cs := changeState{State: store.State(n)}
	if cut {
		k, err := strconv.Atoi(skip)
		if err != nil || k <= 0 {
			return changeState{}, false
		}
		cs.Skip = k
	}
	return cs, true
}

func (cs changeState) String() string {
	if cs.Skip == 0 {
		return FormatState(uint64(cs.State))
	}
	return FormatState(uint64(cs.State)) + "." + strconv.Itoa(cs.Skip)
}

// ChangeSet is the merged result of a change log range.
type ChangeSet struct {
	Created, Updated, Destroyed []string
	// Props is the union of updated properties, nil when any update may
	// have touched any property.
	Props    []string
	NewState string
	More     bool
	// Since is the state the changes were asked from.
	Since store.State
}

// ReadChanges merges the change log of typ in acct after since, cutting at
// max ids (0: no limit). It answers cannotCalculateChanges for an unknown,
// future or pruned state (RFC 8620 §5.2).
func ReadChanges(tx store.Tx, acct store.AccountID, typ, since string, max int) (*ChangeSet, error) {
	cs, ok := parseChangeState(since)
	if !ok {
		return nil, NewMethodError(ErrCannotCalculateChanges, "unknown state")
	}
	cur, err := tx.State(acct, typ)
	if err != nil {
		return nil, err
	}
	if cs.State > cur || (cs.State == cur && cs.Skip > 0) {
		return nil, NewMethodError(ErrCannotCalculateChanges, "unknown state")
	}
	limit := 0
	if max > 0 {
		limit = max + cs.Skip
	}
	entries, more, err := tx.Changes(acct, typ, cs.State, limit)
	if errors.Is(err, store.ErrChangesPruned) {
		return nil, NewMethodError(ErrCannotCalculateChanges, "the state is too old")
	}
	if err != nil {
		return nil, err
	}
	// A cut "S.K" must fall inside the commit after S, as the ones this
	// function writes do; any other skips changes the client never saw.
	if cs.Skip > 0 && (len(entries) == 0 || entries[0].State != cs.State+1 ||
		cs.Skip >= len(entries[0].Created)+len(entries[0].Updated)+len(entries[0].Destroyed)) {
		return nil, NewMethodError(ErrCannotCalculateChanges, "unknown state")
	}
	type op int
	const (
		opCreated op = iota + 1
		opUpdated
		opDestroyed
		opGone // created and destroyed in the range
	)
	ops := map[string]op{}
	var order []string
	note := func(id string, o op) {
		prev, seen := ops[id]
		if !seen {
			order = append(order, id)
			ops[id] = o
			return
		}
		switch {
		case o == opDestroyed && prev == opCreated:
			ops[id] = opGone
		case o == opDestroyed:
			ops[id] = opDestroyed
		case o == opUpdated && (prev == opCreated || prev == opUpdated):
			// stays created or updated
		default:
			ops[id] = o
		}
	}
	out := &ChangeSet{NewState: cs.String(), Since: cs.State}
	propsKnown := true
	props := map[string]bool{}
	n := 0
	for i, e := range entries {
		ids := make([]struct {
			id string
			o  op
		}, 0, len(e.Created)+len(e.Updated)+len(e.Destroyed))
		for _, id := range e.Created {
			ids = append(ids, struct {
				id string
				o  op
			}{id, opCreated})
		}
		for _, id := range e.Updated {
			ids = append(ids, struct {
				id string
				o  op
			}{id, opUpdated})
		}
		for _, id := range e.Destroyed {
			ids = append(ids, struct {
				id string
				o  op
			}{id, opDestroyed})
		}
		start := 0
		if i == 0 && e.State == cs.State+1 {
			start = min(cs.Skip, len(ids))
		}
		rest := ids[start:]
		if max > 0 && n+len(rest) > max {
			take := max - n
			if take <= 0 {
				out.More = true
				break
			}
			for _, x := range rest[:take] {
				note(x.id, x.o)
			}
			out.NewState = changeState{State: e.State - 1, Skip: start + take}.String()
			out.More = true
			propsKnown = false
			break
		}
		for _, x := range rest {
			note(x.id, x.o)
		}
		n += len(rest)
		out.NewState = FormatState(uint64(e.State))
		if len(e.Updated) > 0 {
			if e.Props == nil {
				propsKnown = false
			}
			for _, p := range e.Props {
				props[p] = true
			}
		}
	}
	if more && !out.More {
		out.More = true
	}
	out.Created, out.Updated, out.Destroyed = []string{}, []string{}, []string{}
	for _, id := range order {
		switch ops[id] {
		case opCreated:
			out.Created = append(out.Created, id)
		case opUpdated:
			out.Updated = append(out.Updated, id)
		case opDestroyed:
			out.Destroyed = append(out.Destroyed, id)
		}
	}
	if propsKnown && len(props) > 0 {
		for p := range props {
			out.Props = append(out.Props, p)
		}
		slices.Sort(out.Props)
	}
	return out, nil
}

func (t *Type) changes(ctx context.Context, c *Call) (any, error) {
	var args ChangesArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if args.SinceState == "" {
		return nil, InvalidArguments("sinceState is required")
	}
	if args.MaxChanges != nil && *args.MaxChanges <= 0 {
		return nil, InvalidArguments("maxChanges must be a positive integer")
	}
	acct, err := c.Account(ctx, args.AccountID, t.Capability)
	if err != nil {
		return nil, err
	}
	max := 0
	if args.MaxChanges != nil {
		max = *args.MaxChanges
	}
	var resp *ChangesResponse
	err = c.Store().View(ctx, func(tx store.Tx) error {
		set, err := ReadChanges(tx, acct.ID, t.Name, args.SinceState, max)
		if err != nil {
			return err
		}
		if t.FilterChanges != nil {
			if err := t.FilterChanges(ctx, tx, acct.ID, set); err != nil {
				return err
			}
		}
		resp = &ChangesResponse{AccountID: args.AccountID, OldState: args.SinceState, NewState: set.NewState,
			HasMoreChanges: set.More, Created: set.Created, Updated: set.Updated, Destroyed: set.Destroyed}
		if t.ReportUpdatedProperties {
			var props []string
			if len(set.Props) > 0 && !slices.ContainsFunc(set.Props, func(p string) bool {
				return !slices.Contains(t.CountProperties, p)
			}) {
				props = set.Props
			}
			resp.UpdatedProperties = &props
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// CheckState returns the state of typ in acct, and stateMismatch when
// ifInState is given and names another (RFC 8620 §5.3, §5.4); of says
// which account the error is about ("" for accountId).
func CheckState(tx store.Tx, acct store.AccountID, typ string, ifInState *string, of string) (string, error) {
	st, err := tx.State(acct, typ)
	if err != nil {
		return "", err
	}
	state := FormatState(uint64(st))
	if ifInState != nil && *ifInState != state {
		desc := ""
		if of != "" {
			desc = of + " is not in the given state"
		}
		return state, NewMethodError(ErrStateMismatch, desc)
	}
	return state, nil
}

// NewState returns the state a commit left typ in, from the changes Update
// reported, or old when the commit did not touch it. Reading it back in a
// later snapshot could include someone else's commit.
func NewState(changes []store.StateChange, acct store.AccountID, typ, old string) string {
	for _, c := range changes {
		if c.Account == acct && c.Type == typ {
			return FormatState(uint64(c.State))
		}
	}
	return old
}

// emitRaw adds a stored record to a /get response without decoding its
// values: whole when every property is asked for (records the generic
// methods write hold exactly the type's properties), otherwise with the
// asked members picked out, null where absent.
func emitRaw(resp *GetResponse, data []byte, props []string, all bool) error {
	if all {
		resp.List = append(resp.List, data)
		return nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return fmt.Errorf("stored record: %w", err)
	}
	out := make(map[string]json.RawMessage, len(props))
	for _, p := range props {
		v, ok := members[p]
		if !ok {
			v = json.RawMessage("null")
		}
		out[p] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	resp.List = append(resp.List, b)
	return nil
}
