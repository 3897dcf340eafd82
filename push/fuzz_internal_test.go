package push

import (
	"net/url"
	"testing"
)

// FuzzESQuery feeds arbitrary query strings to the EventSource variables
// parser: it must not panic, and what it accepts must be usable.
func FuzzESQuery(f *testing.F) {
	for _, s := range []string{"types=*&closeafter=no&ping=0", "types=Email,Mailbox&closeafter=state&ping=300",
		"types=&ping=-1", "ping=99999999999999999999", "types=A,,B", "closeafter=no&closeafter=state"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		got, bad := parseESQuery(q)
		if bad != "" {
			return
		}
		if got.ping != 0 && (got.ping < minPing || got.ping > maxPing) {
			t.Fatalf("ping %d outside [%d, %d]", got.ping, minPing, maxPing)
		}
		for name := range got.types {
			if !validTypeName(name) {
				t.Fatalf("accepted type name %q", name)
			}
		}
	})
}

// FuzzEventID feeds arbitrary Last-Event-ID and pushState values to the
// decoder and the catch-up: no panic, and what decodes encodes back to
// the same states.
func FuzzEventID(f *testing.F) {
	f.Add(encodeEventID(map[string]map[string]string{"a": {"Email": "5"}}))
	f.Add("e30")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, id string) {
		seen, ok := decodeEventID(id)
		if !ok {
			return
		}
		missedChanges(seen, map[string]map[string]string{"a": {"Email": "6"}}, nil)
		back, ok := decodeEventID((&cursor{states: seen}).id())
		if !ok || len(back) != len(seen) {
			t.Fatalf("%q: %v re-encodes to %v", id, seen, back)
		}
	})
}
