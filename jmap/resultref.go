package jmap

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ResolvePointer evaluates a JMAP JSON Pointer against a decoded JSON value
// (RFC 8620 §3.7): RFC 6901 with the "*" token, which maps the rest of the
// pointer over an array and flattens array results one level.
func ResolvePointer(v any, path string) (any, error) {
	if path == "" {
		return v, nil
	}
	if path[0] != '/' {
		return nil, fmt.Errorf("path %q does not start with /", path)
	}
	return resolveTokens(v, strings.Split(path[1:], "/"))
}

func unescapeToken(t string) string {
	if !strings.Contains(t, "~") {
		return t
	}
	return strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
}

func resolveTokens(v any, tokens []string) (any, error) {
	for i, raw := range tokens {
		tok := unescapeToken(raw)
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[tok]
			if !ok {
				return nil, fmt.Errorf("no member %q", tok)
			}
			v = next
		case []any:
			if raw == "*" {
				out := make([]any, 0, len(cur))
				for _, item := range cur {
					r, err := resolveTokens(item, tokens[i+1:])
					if err != nil {
						return nil, err
					}
					if arr, ok := r.([]any); ok {
						out = append(out, arr...)
					} else {
						out = append(out, r)
					}
				}
				return out, nil
			}
			// RFC 6901 §4: an index is digits without a leading zero;
			// Atoi alone would also take "+1" and "-0".
			n, err := strconv.Atoi(tok)
			if err != nil || n < 0 || n >= len(cur) || tok[0] < '0' || tok[0] > '9' || (len(tok) > 1 && tok[0] == '0') {
				return nil, fmt.Errorf("bad array index %q", tok)
			}
			v = cur[n]
		default:
			return nil, fmt.Errorf("cannot descend into a scalar with %q", tok)
		}
	}
	return v, nil
}

// previousResponse is an earlier response of the request, decoded lazily for
// result references.
type previousResponse struct {
	name, callID string
	args         json.RawMessage
	decoded      any
}

// topMember serves the common path "/name" (say "/ids" of a query) from
// the response's JSON as it is, without decoding it; ok is false for any
// other path, and for a member it cannot find, which ResolvePointer then
// looks for and explains.
func topMember(args []byte, path string) ([]byte, bool) {
	name, ok := strings.CutPrefix(path, "/")
	if !ok || name == "" || strings.ContainsAny(name, "/~*\\\"") {
		return nil, false
	}
	return Member(args, name)
}

// resolveReferences replaces every "#name" argument holding a
// ResultReference with the value it points to (RFC 8620 §3.7).
func resolveReferences(args json.RawMessage, prev []*previousResponse) (json.RawMessage, *MethodError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(args, &m); err != nil {
		return nil, InvalidArguments("the arguments are not a JSON object")
	}
	// Walk a sorted snapshot of the keys: a "##x" reference adds the
	// member "#x", which ranging over m might or might not visit again, and
	// the first failing reference should not depend on map order.
	keys := make([]string, 0, len(m))
	for k := range m {
		if strings.HasPrefix(k, "#") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	changed := false
	for _, k := range keys {
		raw := m[k]
		name := k[1:]
		if _, dup := m[name]; dup {
			return nil, InvalidArguments("both %q and %q are given", name, k)
		}
		var ref ResultReference
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ref); err != nil || ref.ResultOf == "" || ref.Name == "" {
			return nil, NewMethodError(ErrInvalidResultReference, fmt.Sprintf("%q is not a result reference", k))
		}
		var target *previousResponse
		for _, p := range prev {
			if p.callID == ref.ResultOf {
				target = p // RFC 8620 §3.7: the first response with that id
				break
			}
		}
		if target == nil || target.name != ref.Name {
			return nil, NewMethodError(ErrInvalidResultReference, fmt.Sprintf("no %s response with call id %q", ref.Name, ref.ResultOf))
		}
		b, ok := topMember(target.args, ref.Path)
		if !ok {
			if target.decoded == nil {
				if err := json.Unmarshal(target.args, &target.decoded); err != nil {
					return nil, NewMethodError(ErrInvalidResultReference, "the referenced response cannot be read")
				}
			}
			val, err := ResolvePointer(target.decoded, ref.Path)
			if err != nil {
				return nil, NewMethodError(ErrInvalidResultReference, err.Error())
			}
			if b, err = json.Marshal(val); err != nil {
				return nil, NewMethodError(ErrInvalidResultReference, err.Error())
			}
		}
		delete(m, k)
		m[name] = b
		changed = true
	}
	if !changed {
		return args, nil
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, InvalidArguments("the arguments cannot be encoded")
	}
	return out, nil
}
