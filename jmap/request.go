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
	// A request of the usual shape is checked and split in one pass;
	// anything else is checked on its own, then decoded the general way.
	var raw map[string]json.RawMessage
	var calls []Invocation
	valid := utf8.Valid(body)
	fast := false
	if valid {
		raw, calls, fast = splitRequest(body)
	}
	if !fast && (!valid || !validJSON(body)) {
		return nil, &Problem{Type: ProblemNotJSON, Status: http.StatusBadRequest,
			Detail: "the request body is not valid JSON"}
	}
	if err := checkIJSON(body); err != nil {
		return nil, &Problem{Type: ProblemNotJSON, Status: http.StatusBadRequest,
			Detail: "the request is not I-JSON: " + err.Error()}
	}
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

// splitRequest reads a request body in one pass, checking that it is
// JSON as it goes: its members, and its method calls without decoding or
// copying their arguments, which stay slices of body (a Blob/upload or
// Email/set can carry megabytes). It reports false for anything but a
// well-formed request (and for JSON nested deeper than the Reader follows);
// the caller then checks and decodes body the general way, which also
// words the errors.
func splitRequest(body []byte) (raw map[string]json.RawMessage, calls []Invocation, ok bool) {
	raw = map[string]json.RawMessage{}
	r := NewReader(body)
	err := r.Object(func(name string) error {
		if name != "methodCalls" {
			v, err := r.Raw()
			raw[name] = v
			return err
		}
		start := skipSpace(body, r.i)
		calls = []Invocation{}
		err := r.Array(func(int) error {
			var inv Invocation
			n := 0
			err := r.Array(func(i int) error {
				var err error
				switch i {
				case 0:
					inv.Name, err = r.String()
				case 1:
					if r.Next() != '{' {
						return ErrSyntax
					}
					inv.Args, err = r.Raw()
				case 2:
					inv.CallID, err = r.String()
				default:
					return ErrSyntax
				}
				n++
				return err
			})
			if err == nil && n != 3 {
				err = ErrSyntax
			}
			calls = append(calls, inv)
			return err
		})
		raw[name] = body[start:r.i:r.i]
		return err
	})
	if err != nil || !r.End() || calls == nil {
		return nil, nil, false
	}
	return raw, calls, true
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
			end, _ := SkipString(body, i)
			i = end - 1 // the closing quote
			if !expectName {
				continue
			}
			expectName = false
			name := body[start:i]
			escaped := bytes.IndexByte(name, '\\') >= 0
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
