package push

import "testing"

// Take merges the pending batches into the newest state of each type: the
// larger number when a later commit was announced first, and for states
// that are not numbers, the one that came last.
func TestTake_KeepsTheNewestState(t *testing.T) {
	s := &Subscription{Ready: make(chan struct{}, 1)}
	s.add(&batch{acct: "a1", types: []string{"Email", "Mailbox"}, states: []string{"12", "9"}})
	s.add(&batch{acct: "a1", types: []string{"Email", "Mailbox"}, states: []string{"11", "10"}})
	s.add(&batch{acct: "a1", types: []string{"Email"}, states: []string{"9"}})
	s.add(&batch{acct: "a2", types: []string{"Principal"}, states: []string{"zz"}})
	s.add(&batch{acct: "a2", types: []string{"Principal"}, states: []string{"aa"}})
	sc := s.Take()
	want := map[string]map[string]string{"a1": {"Email": "12", "Mailbox": "10"}, "a2": {"Principal": "aa"}}
	for acct, types := range want {
		for typ, st := range types {
			if got := sc.Changed[acct][typ]; got != st {
				t.Errorf("%s %s: state %q, want %q", acct, typ, got, st)
			}
		}
	}
	if s.Take() != nil {
		t.Error("a second Take found changes")
	}
}
