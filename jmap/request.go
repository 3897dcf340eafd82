package jmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"unicode/utf8"
)

// Limits are the core capability limits the server enforces (RFC 8620 §2).
type Limits struct {
	MaxSizeUpload         int64 `json:"maxSizeUpload"`
	MaxConcurrentUpload   int   `json:"maxConcurrentUpload"`
	MaxSizeRequest        int64 `json:"maxSizeRequest"`
	MaxConcurrentRequests int   `json:"maxConcurrentRequests"`
	MaxCallsInRequest     int   `json:"maxCallsInRequest"`
	MaxObjectsInGet       int   `json:"maxObjectsInGet"`
	MaxObjectsInSet       int   `json:"maxObjectsInSet"`
}

// DefaultLimits are the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{
		MaxSizeUpload:         50_000_000,
		MaxConcurrentUpload:   4,
		MaxSizeRequest:        10_000_000,
		MaxConcurrentRequests: 32,
		MaxCallsInRequest:     64,
		MaxObjectsInGet:       1000,
		MaxObjectsInSet:       1000,
	}
}

// DecodeRequest parses an API request body already limited to
// MaxSizeRequest bytes, checking it against the limits and the known
// capabilities. Errors are *Problem values ready for the client.
func DecodeRequest(body []byte, lim Limits, known func(string) bool) (*Request, error) {
	if int64(len(body)) > lim.MaxSizeRequest {
		return nil, &Problem{Type: ProblemLimit, Status: http.StatusBadRequest, Limit: "maxSizeRequest",
			Detail: "the request is larger than the server accepts"}
	}
	if !utf8.Valid(body) || !validJSON(body) {
		return nil, &Problem{Type: ProblemNotJSON, Status: http.StatusBadRequest,
			Detail: "the request body is not valid JSON"}
	}
	if err := checkIJSON(body); err != nil {
		return nil, &Problem{Type: ProblemNotJSON, Status: http.StatusBadRequest,
			Detail: "the request is not I-JSON: " + err.Error()}
	}
	raw, calls, fast := splitRequest(body)
	if !fast {
		if err := json.Unmarshal(body, &raw); err != nil {
			return nil, notRequest("the request is not a JSON object")
		}
	}
	var req Request
	usingRaw, ok := raw["using"]
	if !ok {
		return nil, notRequest("the request has no \"using\"")
	}
	// Pointers, so that a null member (which json leaves as "") is refused.
	var using []*string
	if err := json.Unmarshal(usingRaw, &using); err != nil || using == nil {
		return nil, notRequest("\"using\" must be an array of strings")
	}
	req.Using = make([]string, 0, len(using))
	for _, u := range using {
		if u == nil {
			return nil, notRequest("\"using\" must be an array of strings")
		}
		req.Using = append(req.Using, *u)
	}
	callsRaw, ok := raw["methodCalls"]
	if !ok {
		return nil, notRequest("the request has no \"methodCalls\"")
	}
	if fast {
		req.MethodCalls = calls
	} else if err := json.Unmarshal(callsRaw, &req.MethodCalls); err != nil || req.MethodCalls == nil {
		return nil, notRequest("\"methodCalls\" must be an array of invocations")
	}
	if c, ok := raw["createdIds"]; ok && !bytes.Equal(bytes.TrimSpace(c), []byte("null")) {
		var ids map[string]*string
		if err := json.Unmarshal(c, &ids); err != nil {
			return nil, notRequest("\"createdIds\" must map creation ids to ids")
		}
		req.CreatedIDs = make(map[string]string, len(ids))
		for k, v := range ids {
			if v == nil {
				return nil, notRequest("\"createdIds\" must map creation ids to ids")
			}
			req.CreatedIDs[k] = *v
		}
	}
	for _, u := range req.Using {
		if !known(u) {
			return nil, &Problem{Type: ProblemUnknownCapability, Status: http.StatusBadRequest,
				Detail: fmt.Sprintf("the server does not support the capability %q", u)}
		}
	}
	if len(req.MethodCalls) > lim.MaxCallsInRequest {
		return nil, &Problem{Type: ProblemLimit, Status: http.StatusBadRequest, Limit: "maxCallsInRequest",
			Detail: fmt.Sprintf("the request has more than %d method calls", lim.MaxCallsInRequest)}
	}
	return &req, nil
}

// splitRequest reads the members of a request body that is valid UTF-8
// and valid JSON, and its
// method calls without decoding them or copying their arguments, which
// stay slices of body (a Blob/upload or Email/set can carry megabytes).
// It reports false for anything but a well-formed request whose member
// names have no escapes; the caller then decodes body the general way,
// which also words the errors.
func splitRequest(body []byte) (raw map[string]json.RawMessage, calls []Invocation, ok bool) {
	raw = map[string]json.RawMessage{}
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, nil, false
	}
	i = skipSpace(body, i+1)
	for i < len(body) && body[i] != '}' {
		end, ok := SkipString(body, i)
		if !ok || bytes.IndexByte(body[i:end], '\\') >= 0 {
			return nil, nil, false
		}
		name := string(body[i+1 : end-1])
		if i = skipSpace(body, end); i >= len(body) || body[i] != ':' {
			return nil, nil, false
		}
		start := skipSpace(body, i+1)
		if end, ok = SkipValue(body, start); !ok {
			return nil, nil, false
		}
		raw[name] = body[start:end:end]
		if i = skipSpace(body, end); i < len(body) && body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	list, ok := raw["methodCalls"]
	if !ok || len(list) == 0 || list[0] != '[' {
		return nil, nil, false
	}
	calls = []Invocation{}
	ok = elements(list, func(inv []byte) bool {
		var parts [3][]byte
		n := 0
		if !elements(inv, func(p []byte) bool {
			if n == 3 {
				return false
			}
			parts[n] = p
			n++
			return true
		}) || n != 3 || parts[1][0] != '{' {
			return false
		}
		var name, callID *string
		if json.Unmarshal(parts[0], &name) != nil || name == nil || json.Unmarshal(parts[2], &callID) != nil || callID == nil {
			return false
		}
		calls = append(calls, Invocation{Name: *name, Args: parts[1], CallID: *callID})
		return true
	})
	return raw, calls, ok
}

// elements calls fn with each element of the JSON array b (a value
// SkipValue accepted), until fn returns false; it reports false if b is
// no array or fn did.
func elements(b []byte, fn func(elem []byte) bool) bool {
	if len(b) == 0 || b[0] != '[' {
		return false
	}
	i := skipSpace(b, 1)
	for i < len(b) && b[i] != ']' {
		end, ok := SkipValue(b, i)
		if !ok || !fn(b[i:end:end]) {
			return false
		}
		if i = skipSpace(b, end); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return true
}

func notRequest(detail string) *Problem {
	return &Problem{Type: ProblemNotRequest, Status: http.StatusBadRequest, Detail: detail}
}

// checkIJSON enforces the I-JSON rule (RFC 7493 §2.3) that the encoding
// library does not: no object has two members of the same name. body must
// already be valid JSON; the scan only tracks strings and nesting.
func checkIJSON(body []byte) error {
	type level struct {
		object bool
		names  [][]byte // member names, decoded when they had escapes
		set    map[string]bool
	}
	var stack []level
	expectName := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '{':
			stack = append(stack, level{object: true})
			expectName = true
		case '[':
			stack = append(stack, level{})
			expectName = false
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			expectName = len(stack) > 0 && stack[len(stack)-1].object
		case '"':
			start := i + 1
			escaped := false
			for i++; body[i] != '"'; i++ {
				if body[i] == '\\' {
					escaped = true
					i++
				}
			}
			if !expectName {
				continue
			}
			expectName = false
			name := body[start:i]
			if escaped {
				var s string
				if err := json.Unmarshal(body[start-1:i+1], &s); err != nil {
					return err
				}
				name = []byte(s)
			}
			top := &stack[len(stack)-1]
			if top.set != nil {
				if top.set[string(name)] {
					return fmt.Errorf("duplicate member %q", name)
				}
				top.set[string(name)] = true
				continue
			}
			for _, n := range top.names {
				if bytes.Equal(n, name) {
					return fmt.Errorf("duplicate member %q", name)
				}
			}
			top.names = append(top.names, name)
			if len(top.names) > 16 {
				// Large objects (a /set of many records) switch to a set.
				top.set = make(map[string]bool, 2*len(top.names))
				for _, n := range top.names {
					top.set[string(n)] = true
				}
			}
		}
	}
	return nil
}
