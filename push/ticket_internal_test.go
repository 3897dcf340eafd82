package push

import (
	"testing"
	"time"

	"github.com/jmapd/jmapd/jmap"
)

// A ticket is refused once TicketTTL has passed, and once used.
func TestTickets_Expire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tk := NewTickets()
	tk.now = func() time.Time { return now }
	alice := &jmap.Caller{Principal: "a", Username: "alice@example.test"}
	s1, exp, ok := tk.Issue(alice)
	if !ok || !exp.Equal(now.Add(TicketTTL)) {
		t.Fatalf("issue: %v %v", exp, ok)
	}
	s2, _, _ := tk.Issue(alice)
	now = now.Add(TicketTTL - time.Second)
	if c := tk.Redeem(s1); c != alice {
		t.Errorf("redeem within the TTL: %v", c)
	}
	if c := tk.Redeem(s1); c != nil {
		t.Errorf("second redeem: %v", c)
	}
	now = now.Add(time.Second)
	if c := tk.Redeem(s2); c != nil {
		t.Errorf("redeem at expiry: %v", c)
	}
}

// RFC 8620 §7.3: the ping interval is clamped, never to a minimum above
// 30 s or a maximum below 300 s; 0 stays 0.
func TestClampPing(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, 0}, {1, 1}, {30, 30}, {300, 300}, {3600, 3600}, {99999, 3600}} {
		if got := clampPing(tc.in); got != tc.want {
			t.Errorf("clampPing(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if minPing > 30 || maxPing < 300 {
		t.Errorf("bounds [%d, %d] break RFC 8620 §7.3", minPing, maxPing)
	}
}
