package auth

import (
	"sync"
	"time"
)

// throttle counts failed logins per key (a client address, or an account)
// in fixed windows that start at a key's first failure.
//
// An attempt is charged before its credentials are verified and the charge
// is refunded if they turn out right. Charging first means that many
// concurrent guesses cannot all pass the check before any of them has
// failed.
type throttle struct {
	limit      int           // failures allowed per window
	window     time.Duration // length of a window
	maxEntries int           // bound on len(m)

	mu    sync.Mutex
	m     map[string]*failures
	swept time.Time // when expired windows were last dropped
}

// failures is the count of one key in its current window.
type failures struct {
	start time.Time
	n     int
}

// charge is one provisional failure taken by begin; the zero charge is none.
type charge struct {
	f     *failures
	key   string
	start time.Time
}

func newThrottle(limit int, window time.Duration, maxEntries int) *throttle {
	return &throttle{limit: limit, window: window, maxEntries: maxEntries, m: make(map[string]*failures)}
}

func (f *failures) live(now time.Time, window time.Duration) bool {
	return now.Before(f.start.Add(window))
}

// begin checks key at now. If it has used up its failures, begin returns how
// long until its window ends, and ok false. Otherwise it charges the key one
// failure and returns the charge, which refund takes back if the attempt
// succeeds.
func (t *throttle) begin(now time.Time, key string) (wait time.Duration, c charge, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	f := t.m[key]
	switch {
	case f == nil:
		t.makeRoom()
		f = &failures{start: now}
		t.m[key] = f
	case !f.live(now, t.window):
		f.start, f.n = now, 0
	case f.n >= t.limit:
		return f.start.Add(t.window).Sub(now), charge{}, false
	}
	f.n++
	return 0, charge{f: f, key: key, start: f.start}, true
}

// check reports, charging nothing, whether key may still fail at now; if
// it may not, it also returns how long until its window ends.
func (t *throttle) check(now time.Time, key string) (wait time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[key]
	if f == nil || !f.live(now, t.window) || f.n < t.limit {
		return 0, true
	}
	return f.start.Add(t.window).Sub(now), false
}

// refund takes back a charge, for an attempt that succeeded or could not be
// decided (a store error). A charge whose window has since been restarted is
// not taken from the new window.
func (t *throttle) refund(c charge) {
	if c.f == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[c.key]
	if f != c.f || !f.start.Equal(c.start) || f.n == 0 {
		return
	}
	if f.n--; f.n == 0 {
		delete(t.m, c.key)
	}
}

// sweep drops the expired windows, at most once per window length (or when
// the clock went back).
func (t *throttle) sweep(now time.Time) {
	if now.Sub(t.swept) < t.window && !now.Before(t.swept) {
		return
	}
	t.swept = now
	for k, f := range t.m {
		if !f.live(now, t.window) {
			delete(t.m, k)
		}
	}
}

// makeRoom drops an arbitrary entry when the map is full, so memory stays
// bounded. Addresses and accounts have a throttle each, so that a flood of
// cheap failures from many addresses cannot push accounts out; a new
// account entry costs one argon2 run.
func (t *throttle) makeRoom() {
	if len(t.m) < t.maxEntries {
		return
	}
	for k := range t.m {
		delete(t.m, k)
		return
	}
}

// len reports the number of keys with a window.
func (t *throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
