package push

import (
	"sync"
	"sync/atomic"
)

// pushState is the push side that EventSource and WebSocket connections
// share: their subscription, the cursor of the states they sent, and at
// most one goroutine at a time writing what is pending.
type pushState struct {
	pmu     sync.Mutex // guards sub and cur; held while a change is sent
	sub     *Subscription
	cur     *cursor
	pushing atomic.Bool // a push goroutine runs
}

// kick starts a goroutine that sends the pending changes with send
// (called with pmu held), unless one runs; when the broker shuts the
// subscription down it calls end instead.
func (p *pushState) kick(send func(*StateChange), end func()) {
	if p.pushing.CompareAndSwap(false, true) {
		go p.flush(send, end)
	}
}

// flush sends the pending changes until none are left.
func (p *pushState) flush(send func(*StateChange), end func()) {
	for {
		p.pmu.Lock()
		sub := p.sub
		if sub != nil {
			select {
			case <-sub.Done:
				p.pmu.Unlock()
				p.pushing.Store(false)
				end()
				return
			default:
			}
			if sc := sub.Take(); sc != nil && p.cur.advance(sc) {
				send(sc)
			}
		}
		p.pmu.Unlock()
		p.pushing.Store(false)
		// A change that came after Take but before the flag was cleared
		// found the flag set: take it here.
		if sub == nil || !sub.Pending() || !p.pushing.CompareAndSwap(false, true) {
			return
		}
	}
}
