package store

import (
	"context"
	"sync"
)

// Deferral holds what the Updates run under a context from DeferSync
// left undone when they returned: waiting for their commits to be
// durable, and announcing their changes to subscribers. Whoever made the
// context must call Settle before it acknowledges what was written.
type Deferral struct {
	mu      sync.Mutex
	todo    []func() error
	settled bool
}

type deferralKey struct{}

// DeferSync returns a context under which Store.Update (and the blob
// uploads built on it) returns as soon as its commit is made, before it is
// durable, leaving the rest to d. Several writes of one request then share
// a single wait for the disk, or none when a later write of the request
// waits anyway. The zero Deferral is ready to use.
func DeferSync(ctx context.Context, d *Deferral) context.Context {
	return context.WithValue(ctx, deferralKey{}, d)
}

// DeferralFrom returns the Deferral of ctx, or nil.
func DeferralFrom(ctx context.Context) *Deferral {
	d, _ := ctx.Value(deferralKey{}).(*Deferral)
	return d
}

// Add records what a write left to do, to run at Settle; once d has
// settled, fn runs at once and Add returns its error, so that a write that
// outlives whoever settled d is still waited for.
func (d *Deferral) Add(fn func() error) error {
	d.mu.Lock()
	if !d.settled {
		d.todo = append(d.todo, fn)
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	return fn()
}

// Settle does, in order, what the writes left, and returns the first
// error: nil means everything written under the Deferral is durable.
func (d *Deferral) Settle() error {
	d.mu.Lock()
	todo := d.todo
	d.todo, d.settled = nil, true
	d.mu.Unlock()
	var first error
	for _, fn := range todo {
		if err := fn(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
