package methods

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// CapTest is the capability of the Note type, a record type kept only for
// testing the generic standard methods (RFC 8620 §5) end to end.
const CapTest = "urn:jmapd:params:jmap:test"

// noteType is a small record: a titled text that may sit under a parent
// note. It carries one of each kind of property the generic machinery
// handles: required string, defaulted values, server-set dates, an Id
// reference and an immutable property.
var noteType = &jmap.Type{
	Name:       "Note",
	Capability: CapTest,
	Properties: []string{"id", "title", "body", "isPinned", "parentId", "kind", "created", "updated"},
	ServerSet:  []string{"created", "updated"},
	Immutable:  []string{"kind"},
	IDRefs:     []string{"parentId"},
	Defaults: func() map[string]any {
		return map[string]any{"body": "", "isPinned": false, "parentId": nil, "kind": "plain"}
	},
	Validate:  validateNote,
	OnDestroy: destroyNote,
	Filter:    noteFilter,
	Sort: map[string]func(a, b map[string]any, coll string) int{
		"title": func(a, b map[string]any, coll string) int {
			r, _ := jmap.CompareStrings(coll, str(a["title"]), str(b["title"]))
			return r
		},
		"created": func(a, b map[string]any, _ string) int { return strings.Compare(str(a["created"]), str(b["created"])) },
		"isPinned": func(a, b map[string]any, _ string) int {
			return boolInt(a["isPinned"]) - boolInt(b["isPinned"])
		},
	},
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func boolInt(v any) int {
	if b, _ := v.(bool); b {
		return 1
	}
	return 0
}

func registerNote(r *jmap.Registry, accts *Accounts) {
	r.AddCapability(CapTest, struct{}{})
	accts.AddCapability(CapTest, func(store.AccountID) any { return struct{}{} })
	r.Register(noteType, "get", "changes", "set", "copy", "query", "queryChanges")
}

func validateNote(_ context.Context, tx store.Tx, acct store.AccountID, obj, old map[string]any) *jmap.SetError {
	title, ok := obj["title"].(string)
	if !ok || title == "" || len(title) > 255 {
		return jmap.InvalidProperties("title must be a string of 1 to 255 octets", "title")
	}
	if _, ok := obj["body"].(string); !ok {
		return jmap.InvalidProperties("body must be a string", "body")
	}
	if _, ok := obj["isPinned"].(bool); !ok {
		return jmap.InvalidProperties("isPinned must be a boolean", "isPinned")
	}
	if k, ok := obj["kind"].(string); !ok || (k != "plain" && k != "checklist") {
		return jmap.InvalidProperties(`kind must be "plain" or "checklist"`, "kind")
	}
	switch p := obj["parentId"].(type) {
	case nil:
	case string:
		if p == obj["id"] {
			return jmap.InvalidProperties("a note cannot be its own parent", "parentId")
		}
		if _, err := tx.Get(acct, "Note", p); err != nil {
			return jmap.InvalidProperties(fmt.Sprintf("no note %q", p), "parentId")
		}
	default:
		return jmap.InvalidProperties("parentId must be an id or null", "parentId")
	}
	now := time.Now().UTC().Format(time.RFC3339)
	if old == nil {
		obj["created"] = now
	}
	obj["updated"] = now
	return nil
}

func destroyNote(_ context.Context, tx store.Tx, acct store.AccountID, obj map[string]any) *jmap.SetError {
	for o, err := range tx.Scan(acct, "Note") {
		if err != nil {
			return jmap.NewSetError(jmap.SetForbidden, "cannot check children")
		}
		if strings.Contains(string(o.Data), `"parentId":"`+str(obj["id"])+`"`) {
			return jmap.NewSetError(jmap.SetForbidden, "the note has children")
		}
	}
	return nil
}

func noteFilter(cond map[string]any) (func(map[string]any) bool, error) {
	var tests []func(map[string]any) bool
	for k, v := range cond {
		switch k {
		case "text":
			s, ok := v.(string)
			if !ok {
				return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, "text must be a string")
			}
			s = strings.ToLower(s)
			tests = append(tests, func(o map[string]any) bool {
				return strings.Contains(strings.ToLower(str(o["title"])), s) || strings.Contains(strings.ToLower(str(o["body"])), s)
			})
		case "isPinned":
			b, ok := v.(bool)
			if !ok {
				return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, "isPinned must be a boolean")
			}
			tests = append(tests, func(o map[string]any) bool { return o["isPinned"] == b })
		case "parentId":
			if v != nil {
				if _, ok := v.(string); !ok {
					return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, "parentId must be an id or null")
				}
			}
			tests = append(tests, func(o map[string]any) bool { return o["parentId"] == v })
		default:
			return nil, jmap.NewMethodError(jmap.ErrUnsupportedFilter, fmt.Sprintf("unknown condition %q", k))
		}
	}
	return jmap.AllOf(tests), nil
}
