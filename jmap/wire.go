package jmap

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Capability URNs (RFC 8620 §9.4, RFC 9404 §6).
const (
	CapCore = "urn:ietf:params:jmap:core"
	CapBlob = "urn:ietf:params:jmap:blob"
)

// ValidID reports whether s is a well-formed Id: 1 to 255 characters of the
// URL-safe base64 alphabet (RFC 8620 §1.2).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Invocation is a method call or response: [name, arguments, method call id]
// (RFC 8620 §3.2).
type Invocation struct {
	Name   string
	Args   json.RawMessage
	CallID string
}

// MarshalJSON writes the invocation as a 3-element array.
func (inv Invocation) MarshalJSON() ([]byte, error) {
	args := inv.Args
	if args == nil {
		args = json.RawMessage("{}")
	}
	return json.Marshal([]any{inv.Name, args, inv.CallID})
}

var errBadInvocation = errors.New("an invocation is an array of a name, an arguments object and a method call id")

// UnmarshalJSON reads a 3-element array whose members have the right types.
func (inv *Invocation) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil || len(parts) != 3 {
		return errBadInvocation
	}
	// Pointers, so that null (which json leaves as "") is refused: the name
	// and the call id are Strings (RFC 8620 §3.2).
	var name, callID *string
	if err := json.Unmarshal(parts[0], &name); err != nil || name == nil {
		return errBadInvocation
	}
	if err := json.Unmarshal(parts[2], &callID); err != nil || callID == nil {
		return errBadInvocation
	}
	if !isJSONObject(parts[1]) {
		return errBadInvocation
	}
	inv.Name, inv.Args, inv.CallID = *name, parts[1], *callID
	return nil
}

func isJSONObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// Request is the body of a POST to the API endpoint (RFC 8620 §3.3).
type Request struct {
	Using       []string          `json:"using"`
	MethodCalls []Invocation      `json:"methodCalls"`
	CreatedIDs  map[string]string `json:"createdIds,omitempty"`
}

// Response is the API endpoint's answer (RFC 8620 §3.4).
type Response struct {
	MethodResponses []Invocation `json:"methodResponses"`
	// CreatedIDs is present exactly when the request had createdIds, even
	// empty (RFC 8620 §3.4).
	CreatedIDs   *map[string]string `json:"createdIds,omitempty"`
	SessionState string             `json:"sessionState"`
}

// ResultReference points into an earlier response of the same request
// (RFC 8620 §3.7).
type ResultReference struct {
	ResultOf string `json:"resultOf"`
	Name     string `json:"name"`
	Path     string `json:"path"`
}

// FormatState renders a store state counter as a JMAP state string.
func FormatState(n uint64) string { return fmt.Sprintf("%d", n) }
