package push

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/jmapd/jmapd/store"
)

// cursor is what one connection's client has been told: the state of
// every type in every account it sees, as of its last event. It is encoded
// as the EventSource event id and the WebSocket pushState, so that a
// client coming back with it learns what it missed.
//
// The cursor starts from a snapshot taken after the subscription was made
// and then only moves forward with what is pushed, so no store read is
// needed per event. Types the client did not ask for stay at their
// snapshot; a client that later asks for them is told they changed, which
// costs it a /changes call and never hides a change.
type cursor struct {
	states map[string]map[string]string
}

// newCursor takes the snapshot for who; call it after Subscribe.
func (b *Broker) newCursor(ctx context.Context, who store.PrincipalID) (*cursor, error) {
	states, err := b.visibleStates(ctx, who)
	if err != nil {
		return nil, err
	}
	return &cursor{states: states}, nil
}

// advance drops from sc the states the client already has (a change
// published before the snapshot arrives after it), records the others and
// reports whether anything is left to send.
func (c *cursor) advance(sc *StateChange) bool {
	for acct, types := range sc.Changed {
		known := c.states[acct]
		if known == nil {
			known = map[string]string{}
			c.states[acct] = known
		}
		for typ, st := range types {
			if !newer(st, known[typ]) {
				delete(types, typ)
				continue
			}
			known[typ] = st
		}
		if len(types) == 0 {
			delete(sc.Changed, acct)
		}
	}
	return len(sc.Changed) > 0
}

// id encodes the cursor as encodeEventID does.
func (c *cursor) id() string {
	return base64.RawURLEncoding.EncodeToString(appendStates(nil, c.states))
}

// newer reports whether state a comes after b; states are counters, and a
// state that is not one is taken as newer.
func newer(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return a != b
	}
	return x > y
}

// appendStates appends states as a JSON object of objects. Account ids,
// type names and states are short ASCII words, written as they are;
// anything else goes through encoding/json.
func appendStates(b []byte, states map[string]map[string]string) []byte {
	b = append(b, '{')
	first := true
	for acct, types := range states {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, acct)
		b = append(b, ':', '{')
		inner := true
		for typ, st := range types {
			if !inner {
				b = append(b, ',')
			}
			inner = false
			b = appendString(b, typ)
			b = append(b, ':')
			b = appendString(b, st)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// encodeStateChange encodes sc as encoding/json would, but without
// reflection: it is written once per connection per change.
func encodeStateChange(sc *StateChange) []byte {
	b := make([]byte, 0, 64+32*len(sc.Changed)+len(sc.PushState))
	b = append(b, `{"@type":`...)
	b = appendString(b, sc.Type)
	b = append(b, `,"changed":`...)
	b = appendStates(b, sc.Changed)
	if sc.PushState != "" {
		b = append(b, `,"pushState":`...)
		b = appendString(b, sc.PushState)
	}
	return append(b, '}')
}
