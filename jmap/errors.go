package jmap

import (
	"encoding/json"
	"fmt"
)

// ErrorType is the "type" of a method error, SetError or problem.
type ErrorType string

// Request-level problem types (RFC 8620 §3.6.1).
const (
	ProblemUnknownCapability ErrorType = "urn:ietf:params:jmap:error:unknownCapability"
	ProblemNotJSON           ErrorType = "urn:ietf:params:jmap:error:notJSON"
	ProblemNotRequest        ErrorType = "urn:ietf:params:jmap:error:notRequest"
	ProblemLimit             ErrorType = "urn:ietf:params:jmap:error:limit"
)

// Method-level error types (RFC 8620 §3.6.2 and the method sections).
const (
	ErrServerUnavailable               ErrorType = "serverUnavailable"
	ErrServerFail                      ErrorType = "serverFail"
	ErrServerPartialFail               ErrorType = "serverPartialFail"
	ErrUnknownMethod                   ErrorType = "unknownMethod"
	ErrInvalidArguments                ErrorType = "invalidArguments"
	ErrInvalidResultReference          ErrorType = "invalidResultReference"
	ErrForbidden                       ErrorType = "forbidden"
	ErrAccountNotFound                 ErrorType = "accountNotFound"
	ErrAccountNotSupportedByMethod     ErrorType = "accountNotSupportedByMethod"
	ErrAccountReadOnly                 ErrorType = "accountReadOnly"
	ErrRequestTooLarge                 ErrorType = "requestTooLarge"
	ErrStateMismatch                   ErrorType = "stateMismatch"
	ErrCannotCalculateChanges          ErrorType = "cannotCalculateChanges"
	ErrAnchorNotFound                  ErrorType = "anchorNotFound"
	ErrUnsupportedSort                 ErrorType = "unsupportedSort"
	ErrUnsupportedFilter               ErrorType = "unsupportedFilter"
	ErrTooManyChanges                  ErrorType = "tooManyChanges"
	ErrFromAccountNotFound             ErrorType = "fromAccountNotFound"
	ErrFromAccountNotSupportedByMethod ErrorType = "fromAccountNotSupportedByMethod"
	// ErrUnknownDataType answers Blob/lookup for a type name the server
	// cannot look blobs up in (RFC 9404 §4.3).
	ErrUnknownDataType ErrorType = "unknownDataType"
)

// SetError types (RFC 8620 §5.3, §5.4; RFC 9404 §4).
const (
	SetForbidden         ErrorType = "forbidden"
	SetOverQuota         ErrorType = "overQuota"
	SetTooLarge          ErrorType = "tooLarge"
	SetRateLimit         ErrorType = "rateLimit"
	SetNotFound          ErrorType = "notFound"
	SetInvalidPatch      ErrorType = "invalidPatch"
	SetWillDestroy       ErrorType = "willDestroy"
	SetInvalidProperties ErrorType = "invalidProperties"
	SetSingleton         ErrorType = "singleton"
	SetAlreadyExists     ErrorType = "alreadyExists"
)

// MethodError is a method-level error answered as an "error" invocation.
type MethodError struct {
	Type        ErrorType `json:"type"`
	Description string    `json:"description,omitempty"`
	// Extra holds type-specific members (e.g. "existingId").
	Extra map[string]any `json:"-"`
}

// NewMethodError returns a method error of type t with an optional
// description for the client.
func NewMethodError(t ErrorType, desc string) *MethodError {
	return &MethodError{Type: t, Description: desc}
}

// InvalidArguments returns an invalidArguments error describing what is wrong.
func InvalidArguments(format string, a ...any) *MethodError {
	return NewMethodError(ErrInvalidArguments, fmt.Sprintf(format, a...))
}

func (e *MethodError) Error() string {
	if e.Description != "" {
		return string(e.Type) + ": " + e.Description
	}
	return string(e.Type)
}

// MarshalJSON writes the error with its extra members.
func (e *MethodError) MarshalJSON() ([]byte, error) {
	m := map[string]any{"type": e.Type}
	if e.Description != "" {
		m["description"] = e.Description
	}
	for k, v := range e.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// SetError is the per-object error of /set and /copy (RFC 8620 §5.3).
type SetError struct {
	Type        ErrorType `json:"type"`
	Description string    `json:"description,omitempty"`
	// Properties lists the offending properties of invalidProperties.
	Properties []string `json:"properties,omitempty"`
	// ExistingID is the id of the existing record of alreadyExists.
	ExistingID string `json:"existingId,omitempty"`
	// NotFound lists the missing blob ids of RFC 8621's blobNotFound.
	NotFound []string `json:"notFound,omitempty"`
	// MaxSize, MaxRecipients and InvalidRecipients are the members of
	// RFC 8621 §7.5's tooLarge, tooManyRecipients and invalidRecipients.
	MaxSize           int64    `json:"maxSize,omitempty"`
	MaxRecipients     int      `json:"maxRecipients,omitempty"`
	InvalidRecipients []string `json:"invalidRecipients,omitempty"`
}

// NewSetError returns a SetError of type t.
func NewSetError(t ErrorType, desc string) *SetError { return &SetError{Type: t, Description: desc} }

// InvalidProperties returns an invalidProperties SetError naming props.
func InvalidProperties(desc string, props ...string) *SetError {
	return &SetError{Type: SetInvalidProperties, Description: desc, Properties: props}
}

func (e *SetError) Error() string { return string(e.Type) + ": " + e.Description }

// Problem is a request-level error in RFC 7807 form (RFC 8620 §3.6.1).
type Problem struct {
	Type   ErrorType `json:"type"`
	Status int       `json:"status"`
	Detail string    `json:"detail,omitempty"`
	// Limit names the exceeded limit of a ProblemLimit.
	Limit string `json:"limit,omitempty"`
}

func (p *Problem) Error() string { return string(p.Type) + ": " + p.Detail }
