package push

import (
	"context"
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

// id encodes the cursor.
func (c *cursor) id() string { return encodeEventID(c.states) }

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
