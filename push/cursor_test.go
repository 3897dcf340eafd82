package push

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The hand-written encoders give what encoding/json reads back as the
// same value, for plain and for awkward strings.
func TestEncodeStateChange_MatchesJSON(t *testing.T) {
	for _, sc := range []*StateChange{
		{Type: "StateChange", Changed: map[string]map[string]string{}},
		{Type: "StateChange", Changed: map[string]map[string]string{"a1": {"Email": "12", "Mailbox": "3"}, "b2": {"Note": "7"}}, PushState: "eyJ9"},
		{Type: "StateChange", Changed: map[string]map[string]string{"q\"<\\>&\n\u00e9": {"T\x01": "s\u2028"}}},
	} {
		var got, want StateChange
		if err := json.Unmarshal(encodeStateChange(sc), &got); err != nil {
			t.Fatalf("%s: %v", encodeStateChange(sc), err)
		}
		b, _ := json.Marshal(sc)
		json.Unmarshal(b, &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("encoded %s, want %s", encodeStateChange(sc), b)
		}
		c := &cursor{states: sc.Changed}
		if back, ok := decodeEventID(c.id()); !ok || !reflect.DeepEqual(back, sc.Changed) {
			t.Errorf("event id %s decodes to %v, want %v", c.id(), back, sc.Changed)
		}
	}
}
