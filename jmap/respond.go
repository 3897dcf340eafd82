package jmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// responseParts returns the encoding of r, exactly as marshal gives it, as
// pieces to be written in order, and their total length. The method
// responses' arguments are pieces of their own, not copies: Execute builds
// every Args with json.Marshal (or hands over Encoded bytes held to the
// same), so they are already compact, valid and HTML-escaped, and
// encoding them again would only scan them twice more - some 200 KB each
// time for a 1,000-object /get. TestEncodeResponse_MatchesMarshal holds
// the pieces to marshal's bytes.
func responseParts(r *Response) ([][]byte, int, error) {
	var created []byte
	if r.CreatedIDs != nil {
		ids, err := marshal(*r.CreatedIDs)
		if err != nil {
			return nil, 0, err
		}
		created = bytes.TrimSuffix(ids, []byte("\n"))
	}
	// The glue between the arguments goes in one buffer that never grows
	// (a string is at most six octets per octet once escaped), so that
	// the pieces cut from it stay valid.
	size := 64 + len(created) + 6*len(r.SessionState)
	for _, inv := range r.MethodResponses {
		size += 6*(len(inv.Name)+len(inv.CallID)) + 16
	}
	glue := make([]byte, 0, size)
	parts := make([][]byte, 0, 2*len(r.MethodResponses)+2)
	total := 0
	mark := 0
	cut := func() {
		if len(glue) > mark {
			parts = append(parts, glue[mark:len(glue):len(glue)])
			total += len(glue) - mark
			mark = len(glue)
		}
	}
	glue = append(glue, `{"methodResponses":`...)
	if r.MethodResponses == nil {
		glue = append(glue, "null"...)
	} else {
		glue = append(glue, '[')
		for i, inv := range r.MethodResponses {
			args := inv.Args
			if args == nil {
				args = json.RawMessage("{}")
			} else if len(args) == 0 {
				return nil, 0, errors.New("jmap: empty method response arguments")
			}
			if i > 0 {
				glue = append(glue, ',')
			}
			// As Invocation.MarshalJSON: json.Marshal, so HTML-escaped.
			glue = append(glue, '[')
			glue = AppendString(glue, inv.Name)
			glue = append(glue, ',')
			cut()
			parts = append(parts, args)
			total += len(args)
			glue = append(glue, ',')
			glue = AppendString(glue, inv.CallID)
			glue = append(glue, ']')
		}
		glue = append(glue, ']')
	}
	if created != nil {
		glue = append(glue, `,"createdIds":`...)
		glue = append(glue, created...)
	}
	glue = append(glue, `,"sessionState":`...)
	glue = appendString(glue, r.SessionState, false) // as marshal: not HTML-escaped
	glue = append(glue, "}\n"...)
	cut()
	return parts, total, nil
}

// encodeResponse encodes r exactly as marshal does, in one slice.
func encodeResponse(r *Response) ([]byte, error) {
	parts, n, err := responseParts(r)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b, nil
}

// writeResponse writes r as JSON with the given status, the arguments of
// its method responses straight from where they are.
func writeResponse(w http.ResponseWriter, status int, r *Response) {
	parts, n, err := responseParts(r)
	if err != nil {
		WriteProblem(w, &Problem{Type: "about:blank", Status: http.StatusInternalServerError, Detail: "internal error"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(status)
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return
		}
	}
}
