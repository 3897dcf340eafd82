package methods

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmapd/jmapd/jmap"
)

// shareNotificationProps are the properties of a ShareNotification
// (RFC 9670 §3), all of them server-set and immutable.
var shareNotificationProps = []string{"id", "created", "changedBy", "objectType", "objectAccountId",
	"objectId", "oldRights", "newRights", "name"}

// shareNotificationKind is the ShareNotification data type (RFC 9670 §3)
// over the records the server writes in each user's own account
// (shareNotificationRecord), the account that holds their Principals.
var shareNotificationKind = &jmap.Type{
	Name:       shareNotificationType,
	Capability: CapPrincipals,
	Properties: shareNotificationProps,
	ServerSet:  shareNotificationProps[1:],
	Immutable:  shareNotificationProps[1:],
	Filter:     shareNotificationFilter,
	Sort: map[string]func(a, b map[string]any, coll string) int{
		// RFC 9670 §3.4.2: created MUST be supported. UTCDate strings of
		// one form order as their times.
		"created": func(a, b map[string]any, _ string) int {
			return strings.Compare(str(a["created"]), str(b["created"]))
		},
	},
}

// registerShareNotification adds the ShareNotification/* methods
// (RFC 9670 §3.1-§3.5).
func registerShareNotification(r *jmap.Registry) {
	r.Register(shareNotificationKind, "get", "changes", "query", "queryChanges")
	r.Handle("ShareNotification/set", CapPrincipals, shareNotificationSet)
}

// shareNotificationFilter compiles a FilterCondition of RFC 9670 §3.4.1.
func shareNotificationFilter(cond map[string]any) (func(map[string]any) bool, error) {
	var tests []func(map[string]any) bool
	created := func(o map[string]any) time.Time {
		t, _ := parseUTCDate(str(o["created"]))
		return t
	}
	for k, v := range cond {
		switch k {
		case "after", "before":
			if v == nil {
				continue
			}
			s, _ := v.(string)
			at, ok := parseUTCDate(s)
			if !ok {
				return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("%s must be a UTCDate or null", k))
			}
			if k == "after" {
				// On or after.
				tests = append(tests, func(o map[string]any) bool { return !created(o).Before(at) })
			} else {
				tests = append(tests, func(o map[string]any) bool { return created(o).Before(at) })
			}
		case "objectType", "objectAccountId":
			s, ok := v.(string)
			if !ok {
				return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("%s must be a string", k))
			}
			tests = append(tests, func(o map[string]any) bool { return o[k] == s })
		default:
			return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("unknown condition %q", k))
		}
	}
	return jmap.AllOf(tests), nil
}

// shareNotificationSet is ShareNotification/set (RFC 9670 §3.3): only
// destroy, which dismisses a notification; any create or update is
// forbidden.
func shareNotificationSet(ctx context.Context, c *jmap.Call) (any, error) {
	var args jmap.SetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if err := args.CheckSize(c.Limits()); err != nil {
		return nil, err
	}
	destroy := args
	destroy.Create = jmap.OrderedObjects{}
	destroy.Update = nil
	resp, err := shareNotificationKind.SetWith(ctx, c, &destroy)
	if err != nil {
		return nil, err
	}
	for _, cid := range args.Create.Keys {
		if resp.NotCreated == nil {
			resp.NotCreated = map[string]*jmap.SetError{}
		}
		resp.NotCreated[cid] = forbidden("share notifications are made by the server")
	}
	for id := range args.Update {
		if resp.NotUpdated == nil {
			resp.NotUpdated = map[string]*jmap.SetError{}
		}
		resp.NotUpdated[id] = forbidden("share notifications cannot be changed")
	}
	return resp, nil
}
