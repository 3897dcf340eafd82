package jmap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jmapd/jmapd/store"
)

// CopyArgs are the arguments of /copy (RFC 8620 §5.4).
type CopyArgs struct {
	FromAccountID            string         `json:"fromAccountId"`
	IfFromInState            *string        `json:"ifFromInState"`
	AccountID                string         `json:"accountId"`
	IfInState                *string        `json:"ifInState"`
	Create                   OrderedObjects `json:"create"`
	OnSuccessDestroyOriginal bool           `json:"onSuccessDestroyOriginal"`
	DestroyFromIfInState     *string        `json:"destroyFromIfInState"`
}

// CopyResponse is the response of /copy.
type CopyResponse struct {
	FromAccountID string                    `json:"fromAccountId"`
	AccountID     string                    `json:"accountId"`
	OldState      string                    `json:"oldState"`
	NewState      string                    `json:"newState"`
	Created       map[string]map[string]any `json:"created"`
	NotCreated    map[string]*SetError      `json:"notCreated"`
}

func (t *Type) copy(ctx context.Context, c *Call) (any, error) {
	var args CopyArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if args.FromAccountID == args.AccountID {
		return nil, InvalidArguments("fromAccountId must differ from accountId")
	}
	from, err := c.FromAccount(ctx, args.FromAccountID, t.Capability)
	if err != nil {
		return nil, err
	}
	to, err := c.WritableAccount(ctx, args.AccountID, t.Capability)
	if err != nil {
		return nil, err
	}
	if len(args.Create.Keys) > c.Limits().MaxObjectsInSet {
		return nil, NewMethodError(ErrRequestTooLarge, fmt.Sprintf("at most %d objects", c.Limits().MaxObjectsInSet))
	}
	var resp *CopyResponse
	var created map[string]string
	var originals []string
	changes, err := c.Store().Update(ctx, func(tx store.Tx) error {
		resp = &CopyResponse{FromAccountID: args.FromAccountID, AccountID: args.AccountID,
			Created: map[string]map[string]any{}, NotCreated: map[string]*SetError{}}
		created, originals = map[string]string{}, nil
		if _, err := CheckState(tx, from.ID, t.Name, args.IfFromInState, "fromAccountId"); err != nil {
			return err
		}
		var err error
		if resp.OldState, err = CheckState(tx, to.ID, t.Name, args.IfInState, ""); err != nil {
			return err
		}
		for _, cid := range args.Create.Keys {
			var over map[string]any
			if err := json.Unmarshal(args.Create.Values[cid], &over); err != nil || over == nil {
				resp.NotCreated[cid] = InvalidProperties("the record is not a JSON object")
				continue
			}
			srcID, _ := over["id"].(string)
			srcID, ok := c.ResolveID(srcID)
			if !ok || srcID == "" {
				resp.NotCreated[cid] = NewSetError(SetNotFound, "no such record to copy")
				continue
			}
			data, err := tx.Get(from.ID, t.Name, srcID)
			if errors.Is(err, store.ErrNotFound) {
				resp.NotCreated[cid] = NewSetError(SetNotFound, "no such record to copy")
				continue
			} else if err != nil {
				return err
			}
			obj, err := decodeObject(data)
			if err != nil {
				return err
			}
			delete(obj, "id")
			for _, p := range t.ServerSet {
				delete(obj, p)
			}
			for k, v := range over {
				if k != "id" {
					obj[k] = v
				}
			}
			id, extra, serr, err := t.CreateRecord(ctx, tx, to.ID, obj, func(s string) (string, bool) {
				if len(s) > 0 && s[0] == '#' {
					if real, ok := created[s[1:]]; ok {
						return real, true
					}
				}
				return c.ResolveID(s)
			})
			if err != nil {
				return err
			}
			if serr != nil {
				resp.NotCreated[cid] = serr
				continue
			}
			// Only what the server set is reported (RFC 8620 §5.4).
			for k := range extra {
				if k != "id" && !slices.Contains(t.ServerSet, k) {
					if _, overridden := over[k]; overridden {
						delete(extra, k)
					}
				}
			}
			created[cid] = id
			resp.Created[cid] = extra
			originals = append(originals, srcID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for cid, id := range created {
		c.Created(cid, id)
	}
	resp.NewState = NewState(changes, to.ID, t.Name, resp.OldState)
	if len(resp.Created) == 0 {
		resp.Created = nil
	}
	if len(resp.NotCreated) == 0 {
		resp.NotCreated = nil
	}
	if args.OnSuccessDestroyOriginal && len(originals) > 0 {
		if err := t.ImplicitDestroy(ctx, c, args.FromAccountID, args.DestroyFromIfInState, originals); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// ImplicitDestroy makes the single Foo/set call that /copy's
// onSuccessDestroyOriginal asks for, adding its response after the copy's.
func (t *Type) ImplicitDestroy(ctx context.Context, c *Call, acct string, ifInState *string, ids []string) error {
	args, err := json.Marshal(map[string]any{"accountId": acct, "ifInState": ifInState, "destroy": ids})
	if err != nil {
		return err
	}
	sub := &Call{Name: t.Name + "/set", ID: c.ID, Args: args, Caller: c.Caller, Using: c.Using, reg: c.reg, req: c.req}
	res, err := t.set(ctx, sub)
	if err != nil {
		return c.AddResponse("error", toMethodError(ctx, sub.Name, err))
	}
	c.extra = append(c.extra, sub.extra...)
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	c.extra = append(c.extra, Invocation{Name: sub.Name, Args: b, CallID: c.ID})
	return nil
}
