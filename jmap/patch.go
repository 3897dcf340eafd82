package jmap

import (
	"fmt"
	"sort"
	"strings"
)

// ApplyPatch applies a PatchObject (RFC 8620 §5.3) to obj, a decoded record,
// and returns the patched copy and the top-level properties it touched. obj
// is not modified. A malformed patch returns an invalidPatch SetError.
//
// Each key is a JSON Pointer with an implicit leading "/"; every part but the
// last must exist and be an object; a null value removes the member (the
// caller restores defaults); no key may be a prefix of another; pointers may
// not index into arrays.
func ApplyPatch(obj map[string]any, patch map[string]any) (map[string]any, []string, *SetError) {
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Look up every proper prefix that ends at a "/": sorted neighbours
	// alone miss "a" and "a/b" when "a.b" sorts between them.
	for _, k := range keys {
		for i := 0; i < len(k); i++ {
			if k[i] != '/' {
				continue
			}
			if _, ok := patch[k[:i]]; ok {
				return nil, nil, NewSetError(SetInvalidPatch, fmt.Sprintf("%q and %q overlap", k[:i], k))
			}
		}
	}
	out := cloneMap(obj)
	touched := map[string]bool{}
	for _, k := range keys {
		if k == "" || strings.HasPrefix(k, "/") {
			return nil, nil, NewSetError(SetInvalidPatch, fmt.Sprintf("%q is not a patch path", k))
		}
		parts := strings.Split(k, "/")
		for i := range parts {
			parts[i] = unescapeToken(parts[i])
		}
		touched[parts[0]] = true
		cur := out
		for i, p := range parts[:len(parts)-1] {
			next, ok := cur[p]
			if !ok || next == nil {
				return nil, nil, NewSetError(SetInvalidPatch, fmt.Sprintf("%q: %q does not exist", k, strings.Join(parts[:i+1], "/")))
			}
			child, ok := next.(map[string]any)
			if !ok {
				return nil, nil, NewSetError(SetInvalidPatch, fmt.Sprintf("%q: %q is not an object", k, strings.Join(parts[:i+1], "/")))
			}
			// Copy on the way down so obj keeps its values.
			child = cloneMap(child)
			cur[p] = child
			cur = child
		}
		last := parts[len(parts)-1]
		if v := patch[k]; v == nil {
			delete(cur, last)
			if len(parts) == 1 {
				cur[last] = nil
			}
		} else {
			cur[last] = v
		}
	}
	props := make([]string, 0, len(touched))
	for p := range touched {
		props = append(props, p)
	}
	sort.Strings(props)
	return out, props, nil
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
