package jmap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/store"
)

// OrderedObjects is a JSON object read with its members in document order,
// as /set create needs so that later creations may refer to earlier ones.
type OrderedObjects struct {
	Keys   []string
	Values map[string]json.RawMessage
}

// UnmarshalJSON reads a JSON object or null, keeping member order. The
// values are slices of one copy of b: a create of many large objects (a
// Blob/upload) is copied once, not once more per value.
func (o *OrderedObjects) UnmarshalJSON(b []byte) error {
	if keys, values, ok := splitObject(b); ok {
		o.Keys, o.Values = keys, values
		return nil
	}
	return o.decode(b)
}

// splitObject reads the members of a JSON object, or null, with a Reader
// over one copy of b; ok is false for anything it does not read (the
// caller decodes it the general way).
func splitObject(b []byte) (keys []string, values map[string]json.RawMessage, ok bool) {
	r := NewReader(bytes.Clone(b))
	if r.Null() {
		return nil, nil, r.End()
	}
	values = map[string]json.RawMessage{}
	err := r.Object(func(k string) error {
		v, err := r.Raw()
		if err != nil {
			return err
		}
		if _, dup := values[k]; !dup {
			keys = append(keys, k)
		}
		values[k] = v[:len(v):len(v)]
		return nil
	})
	if err != nil || !r.End() {
		return nil, nil, false
	}
	return keys, values, true
}

// decode is UnmarshalJSON with encoding/json's tokenizer.
func (o *OrderedObjects) decode(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("expected an object")
	}
	o.Values = map[string]json.RawMessage{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if _, dup := o.Values[k]; !dup {
			o.Keys = append(o.Keys, k)
		}
		o.Values[k] = v
	}
	_, err = dec.Token()
	return err
}

// SetArgs are the arguments of /set (RFC 8620 §5.3).
type SetArgs struct {
	AccountID string                     `json:"accountId"`
	IfInState *string                    `json:"ifInState"`
	Create    OrderedObjects             `json:"create"`
	Update    map[string]json.RawMessage `json:"update"`
	Destroy   *[]string                  `json:"destroy"`
}

// SetResponse is the response of /set.
type SetResponse struct {
	AccountID    string                    `json:"accountId"`
	OldState     string                    `json:"oldState"`
	NewState     string                    `json:"newState"`
	Created      map[string]map[string]any `json:"created"`
	Updated      map[string]map[string]any `json:"updated"`
	Destroyed    []string                  `json:"destroyed"`
	NotCreated   map[string]*SetError      `json:"notCreated"`
	NotUpdated   map[string]*SetError      `json:"notUpdated"`
	NotDestroyed map[string]*SetError      `json:"notDestroyed"`
}

// Normalise makes the empty maps of the response null, as RFC 8620 §5.3
// wants them.
func (r *SetResponse) Normalise() {
	// RFC 8620 §5.3: each of these is null when empty.
	if len(r.Created) == 0 {
		r.Created = nil
	}
	if len(r.Updated) == 0 {
		r.Updated = nil
	}
	if len(r.Destroyed) == 0 {
		r.Destroyed = nil
	}
	if len(r.NotCreated) == 0 {
		r.NotCreated = nil
	}
	if len(r.NotUpdated) == 0 {
		r.NotUpdated = nil
	}
	if len(r.NotDestroyed) == 0 {
		r.NotDestroyed = nil
	}
}

// CheckSize answers requestTooLarge when the /set names more objects than
// maxObjectsInSet allows (RFC 8620 §5.3).
func (a *SetArgs) CheckSize(lim Limits) error {
	n := len(a.Create.Keys) + len(a.Update)
	if a.Destroy != nil {
		n += len(*a.Destroy)
	}
	if n > lim.MaxObjectsInSet {
		return NewMethodError(ErrRequestTooLarge, fmt.Sprintf("at most %d objects", lim.MaxObjectsInSet))
	}
	return nil
}

// writable checks that the account can be written by the caller.
func writable(a *Account) error {
	if a.IsReadOnly {
		return NewMethodError(ErrAccountReadOnly, "")
	}
	return nil
}

// WritableAccount is Account for a method that writes: an account the
// caller can change nothing in answers accountReadOnly.
func (c *Call) WritableAccount(ctx context.Context, id string, capability string) (*Account, error) {
	a, err := c.Account(ctx, id, capability)
	if err != nil {
		return nil, err
	}
	if err := writable(a); err != nil {
		return nil, err
	}
	return a, nil
}

func (t *Type) set(ctx context.Context, c *Call) (any, error) {
	var args SetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	return t.SetWith(ctx, c, &args)
}

// SetWith runs /set with arguments already decoded, for types whose /set
// takes extra arguments.
func (t *Type) SetWith(ctx context.Context, c *Call, args *SetArgs) (*SetResponse, error) {
	acct, err := c.Account(ctx, args.AccountID, t.Capability)
	if err != nil {
		return nil, err
	}
	if !t.PerUserInReadOnly {
		if err := writable(acct); err != nil {
			return nil, err
		}
	}
	if err := args.CheckSize(c.Limits()); err != nil {
		return nil, err
	}
	// The whole call is one transaction. One too big for the store (a
	// thousand large records updated or destroyed) is run again in runs
	// that fit: the creates and the state check with the first, the
	// updates and destroys cut in halves until each run fits. Each update
	// and destroy stands alone (RFC 8620 §5.3); oldState is the state
	// before the first run, newState the state after the last.
	ops := setOps(args)
	resp := emptySetResponse()
	resp.AccountID = args.AccountID
	created := map[string]string{}
	var newest []store.StateChange
	for lo, n, first := 0, len(ops), true; first || lo < len(ops); {
		hi := min(lo+n, len(ops))
		var part *SetResponse
		partCreated := map[string]string{}
		changes, err := c.Store().Update(ctx, func(tx store.Tx) error {
			part = emptySetResponse()
			clear(partCreated)
			if first {
				var err error
				if part.OldState, err = CheckState(tx, acct.ID, t.Name, args.IfInState, ""); err != nil {
					return err
				}
			}
			return t.applySet(ctx, c, tx, acct.ID, args, first, ops[lo:hi], part, created, partCreated)
		})
		if errors.Is(err, store.ErrTxnTooBig) && hi-lo > 1 {
			n = (hi - lo) / 2
			continue
		}
		if err != nil {
			if first {
				return nil, err // nothing is stored
			}
			// The parts before are stored and stand: this part's
			// updates and destroys fail, the others go on. (One that
			// fails for size is a single update or destroy more than a
			// transaction holds.)
			if !errors.Is(err, store.ErrTxnTooBig) {
				zerolog.Ctx(ctx).Error().Err(err).Str("method", t.Name+"/set").Msg("a later part of a large /set")
			}
			part = emptySetResponse()
			clear(partCreated)
			for _, op := range ops[lo:hi] {
				op.fail(part, NewSetError(ErrServerFail, ""))
			}
		}
		if first {
			resp.OldState = part.OldState
		}
		resp.merge(part)
		for cid, id := range partCreated {
			created[cid] = id
			c.Created(cid, id)
		}
		if len(changes) > 0 {
			newest = changes
		}
		first, lo = false, hi
	}
	resp.NewState = NewState(newest, acct.ID, t.Name, resp.OldState)
	resp.Normalise()
	return resp, nil
}

// emptySetResponse is a SetResponse with empty maps, to fill.
func emptySetResponse() *SetResponse {
	return &SetResponse{Created: map[string]map[string]any{}, Updated: map[string]map[string]any{},
		NotCreated: map[string]*SetError{}, NotUpdated: map[string]*SetError{}, NotDestroyed: map[string]*SetError{}}
}

// setOp is one update or destroy of a /set.
type setOp struct {
	rawID   string
	patch   json.RawMessage // nil for a destroy
	destroy bool
}

// setOps lists the updates, then the destroys, of a /set.
func setOps(args *SetArgs) []setOp {
	var ops []setOp
	for rawID, patch := range args.Update {
		ops = append(ops, setOp{rawID: rawID, patch: patch})
	}
	if args.Destroy != nil {
		for _, rawID := range *args.Destroy {
			ops = append(ops, setOp{rawID: rawID, destroy: true})
		}
	}
	return ops
}

// fail records that op was not done.
func (op setOp) fail(resp *SetResponse, serr *SetError) {
	if op.destroy {
		resp.NotDestroyed[op.rawID] = serr
	} else {
		resp.NotUpdated[op.rawID] = serr
	}
}

// merge adds what another run of the same /set did.
func (r *SetResponse) merge(o *SetResponse) {
	for k, v := range o.Created {
		r.Created[k] = v
	}
	for k, v := range o.Updated {
		r.Updated[k] = v
	}
	r.Destroyed = append(r.Destroyed, o.Destroyed...)
	for k, v := range o.NotCreated {
		r.NotCreated[k] = v
	}
	for k, v := range o.NotUpdated {
		r.NotUpdated[k] = v
	}
	for k, v := range o.NotDestroyed {
		r.NotDestroyed[k] = v
	}
}

// applySet runs, inside tx, the creates of a /set when withCreates, then
// ops; created holds what earlier runs of the call created, and the ids of
// this run's creations go to made.
func (t *Type) applySet(ctx context.Context, c *Call, tx store.Tx, acct store.AccountID, args *SetArgs, withCreates bool, ops []setOp,
	resp *SetResponse, created, made map[string]string) error {
	resolve := func(id string) (string, bool) {
		if len(id) > 0 && id[0] == '#' {
			if real, ok := made[id[1:]]; ok {
				return real, true
			}
			if real, ok := created[id[1:]]; ok {
				return real, true
			}
		}
		return c.ResolveID(id)
	}
	if withCreates {
		for _, cid := range t.orderCreates(&args.Create) {
			var obj map[string]any
			if err := json.Unmarshal(args.Create.Values[cid], &obj); err != nil || obj == nil {
				resp.NotCreated[cid] = InvalidProperties("the record is not a JSON object")
				continue
			}
			id, extra, serr, err := t.CreateRecord(ctx, tx, acct, obj, resolve)
			if err != nil {
				return err
			}
			if serr != nil {
				resp.NotCreated[cid] = serr
				continue
			}
			made[cid] = id
			resp.Created[cid] = extra
		}
	}
	for _, op := range ops {
		id, ok := resolve(op.rawID)
		if !ok {
			op.fail(resp, NewSetError(SetNotFound, ""))
			continue
		}
		if op.destroy {
			serr, err := t.DestroyRecord(ctx, tx, acct, id)
			if err != nil {
				return err
			}
			if serr != nil {
				op.fail(resp, serr)
				continue
			}
			resp.Destroyed = append(resp.Destroyed, id)
			continue
		}
		var patch map[string]any
		if err := json.Unmarshal(op.patch, &patch); err != nil || patch == nil {
			op.fail(resp, NewSetError(SetInvalidPatch, "the patch is not a JSON object"))
			continue
		}
		extra, serr, err := t.updateRecord(ctx, tx, acct, id, patch, resolve)
		if err != nil {
			return err
		}
		if serr != nil {
			op.fail(resp, serr)
			continue
		}
		resp.Updated[id] = extra
	}
	return nil
}

// resolveIDRefs replaces "#creationId" values of the type's Id properties.
func (t *Type) resolveIDRefs(obj map[string]any, resolve func(string) (string, bool)) *SetError {
	for _, p := range t.IDRefs {
		switch v := obj[p].(type) {
		case string:
			id, ok := resolve(v)
			if !ok {
				return InvalidProperties(fmt.Sprintf("unknown creation id %q", v), p)
			}
			obj[p] = id
		case []any:
			out := make([]any, len(v))
			for i, x := range v {
				s, isStr := x.(string)
				if !isStr {
					out[i] = x
					continue
				}
				id, ok := resolve(s)
				if !ok {
					return InvalidProperties(fmt.Sprintf("unknown creation id %q", s), p)
				}
				out[i] = id
			}
			obj[p] = out
		}
	}
	return nil
}

// CreateRecord validates and stores a new record built from the client's
// obj and returns its id and the properties the client did not give (the
// "created" entry of RFC 8620 §5.3). A SetError rejects this record only; an
// error aborts the whole call.
func (t *Type) CreateRecord(ctx context.Context, tx store.Tx, acct store.AccountID, obj map[string]any, resolve func(string) (string, bool)) (string, map[string]any, *SetError, error) {
	for k := range obj {
		if !t.hasProperty(ctx, k) {
			return "", nil, InvalidProperties(fmt.Sprintf("unknown property %q", k), k), nil
		}
		if k == "id" || slices.Contains(t.ServerSet, k) {
			return "", nil, InvalidProperties(fmt.Sprintf("%q is set by the server", k), k), nil
		}
	}
	if serr := t.resolveIDRefs(obj, resolve); serr != nil {
		return "", nil, serr, nil
	}
	full := map[string]any{}
	if t.Defaults != nil {
		full = t.Defaults()
	}
	for k, v := range obj {
		if v == nil {
			if _, has := full[k]; has {
				continue // null means "the default"
			}
		}
		full[k] = v
	}
	id, err := tx.NewID()
	if err != nil {
		return "", nil, nil, err
	}
	full["id"] = id
	if t.Validate != nil {
		if serr := t.Validate(ctx, tx, acct, full, nil); serr != nil {
			return "", nil, serr, nil
		}
	}
	data, err := json.Marshal(t.stored(full))
	if err != nil {
		return "", nil, nil, err
	}
	if err := tx.Create(acct, t.Name, id, data); err != nil {
		return "", nil, nil, err
	}
	if t.View != nil {
		if err := t.View(ctx, tx, acct, full); err != nil {
			return "", nil, nil, err
		}
	}
	extra := map[string]any{"id": id}
	for k, v := range full {
		if !t.hasProperty(ctx, k) {
			continue
		}
		if given, ok := obj[k]; !ok || !reflect.DeepEqual(given, v) {
			extra[k] = v
		}
	}
	return id, extra, nil, nil
}

func (t *Type) updateRecord(ctx context.Context, tx store.Tx, acct store.AccountID, id string, patch map[string]any, resolve func(string) (string, bool)) (map[string]any, *SetError, error) {
	data, err := tx.Get(acct, t.Name, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, NewSetError(SetNotFound, ""), nil
	}
	if err != nil {
		return nil, nil, err
	}
	old, err := t.view(ctx, tx, acct, data)
	if errors.Is(err, ErrHidden) {
		return nil, NewSetError(SetNotFound, ""), nil
	}
	if err != nil {
		return nil, nil, err
	}
	next, props, serr := ApplyPatch(old, patch)
	if serr != nil {
		return nil, serr, nil
	}
	var defaults map[string]any
	if t.Defaults != nil {
		defaults = t.Defaults()
	}
	for _, p := range props {
		if !t.hasProperty(ctx, p) {
			return nil, InvalidProperties(fmt.Sprintf("unknown property %q", p), p), nil
		}
		if next[p] == nil {
			if d, ok := defaults[p]; ok {
				next[p] = d
			}
		}
		if reflect.DeepEqual(next[p], old[p]) {
			continue
		}
		if p == "id" || slices.Contains(t.ServerSet, p) || slices.Contains(t.Immutable, p) {
			return nil, InvalidProperties(fmt.Sprintf("%q cannot be changed", p), p), nil
		}
	}
	if serr := t.resolveIDRefs(next, resolve); serr != nil {
		return nil, serr, nil
	}
	if t.Validate != nil {
		if serr := t.Validate(ctx, tx, acct, next, old); serr != nil {
			return nil, serr, nil
		}
	}
	out, err := json.Marshal(t.stored(next))
	if err != nil {
		return nil, nil, err
	}
	if err := tx.Put(acct, t.Name, id, out); err != nil {
		return nil, nil, err
	}
	// Server-set properties that changed as a result are reported back.
	var extra map[string]any
	for _, p := range t.ServerSet {
		if !reflect.DeepEqual(next[p], old[p]) {
			if extra == nil {
				extra = map[string]any{}
			}
			extra[p] = next[p]
		}
	}
	return extra, nil, nil
}

// DestroyRecord removes a record, asking the type's OnDestroy first.
func (t *Type) DestroyRecord(ctx context.Context, tx store.Tx, acct store.AccountID, id string) (*SetError, error) {
	data, err := tx.Get(acct, t.Name, id)
	if errors.Is(err, store.ErrNotFound) {
		return NewSetError(SetNotFound, ""), nil
	}
	if err != nil {
		return nil, err
	}
	if t.OnDestroy != nil || t.View != nil {
		obj, err := t.view(ctx, tx, acct, data)
		if errors.Is(err, ErrHidden) {
			return NewSetError(SetNotFound, ""), nil
		}
		if err != nil {
			return nil, err
		}
		if t.OnDestroy == nil {
			return nil, tx.Delete(acct, t.Name, id)
		}
		if serr := t.OnDestroy(ctx, tx, acct, obj); serr != nil {
			return serr, nil
		}
	}
	return nil, tx.Delete(acct, t.Name, id)
}

// stored returns the record without its per-user properties.
func (t *Type) stored(obj map[string]any) map[string]any {
	if len(t.PerUser) == 0 {
		return obj
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if !slices.Contains(t.PerUser, k) {
			out[k] = v
		}
	}
	return out
}

// orderCreates returns the creation ids so that a create referring to
// another create of the same call ("#cid" in an Id property) comes after it
// (RFC 8620 §5.3). Otherwise document order is kept; a reference loop is
// left in document order, where it fails as an unknown creation id.
func (t *Type) orderCreates(create *OrderedObjects) []string {
	if len(t.IDRefs) == 0 || len(create.Keys) < 2 {
		return create.Keys
	}
	deps := map[string][]string{}
	for _, cid := range create.Keys {
		var obj map[string]any
		if json.Unmarshal(create.Values[cid], &obj) != nil {
			continue
		}
		for _, p := range t.IDRefs {
			var refs []any
			switch v := obj[p].(type) {
			case string:
				refs = []any{v}
			case []any:
				refs = v
			}
			for _, r := range refs {
				if s, ok := r.(string); ok && len(s) > 1 && s[0] == '#' {
					if _, inCall := create.Values[s[1:]]; inCall {
						deps[cid] = append(deps[cid], s[1:])
					}
				}
			}
		}
	}
	if len(deps) == 0 {
		return create.Keys
	}
	out := make([]string, 0, len(create.Keys))
	state := map[string]int{} // 1: visiting, 2: placed
	var visit func(cid string)
	visit = func(cid string) {
		if state[cid] != 0 {
			return
		}
		state[cid] = 1
		for _, d := range deps[cid] {
			visit(d)
		}
		state[cid] = 2
		out = append(out, cid)
	}
	for _, cid := range create.Keys {
		visit(cid)
	}
	return out
}
