package push

import (
	"context"
	"sync"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// Audience tells which principals may see the changes of an account, and
// which accounts a principal sees.
type Audience interface {
	Principals(ctx context.Context, acct store.AccountID) ([]store.PrincipalID, error)
	Accounts(ctx context.Context, who store.PrincipalID) ([]store.AccountID, error)
}

// SystemStates is an Audience that also reports the states of types whose
// records live in the system account but which each user sees in an
// account of their own (RFC 9670's Principal, whose state depends on who
// asks).
type SystemStates interface {
	// SystemStates returns, by account and type, those states as who
	// sees them.
	SystemStates(ctx context.Context, who store.PrincipalID) (map[store.AccountID]map[string]string, error)
}

// StateChange is the object pushed to clients (RFC 8620 §7.1).
type StateChange struct {
	Type    string                       `json:"@type"`
	Changed map[string]map[string]string `json:"changed"`
	// PushState encodes every state the user can see, on a WebSocket
	// (RFC 8887 §4.3.5.1).
	PushState string `json:"pushState,omitempty"`
}

// Broker fans store commits out to subscribers.
type Broker struct {
	st     store.Store
	aud    Audience
	log    zerolog.Logger
	cancel func()

	mu     sync.Mutex
	subs   map[store.PrincipalID]map[*Subscription]struct{}
	closed bool
}

// NewBroker returns a broker fed by st's commits.
func NewBroker(st store.Store, aud Audience, log zerolog.Logger) *Broker {
	b := &Broker{st: st, aud: aud, log: log, subs: map[store.PrincipalID]map[*Subscription]struct{}{}}
	b.cancel = st.Subscribe(b.publish)
	return b
}

// Subscription receives the changes one principal may see, for the types it
// asked for.
type Subscription struct {
	b     *Broker
	who   store.PrincipalID
	types map[string]bool // nil: every type
	// Ready is signalled (without blocking) when changes are pending.
	Ready chan struct{}
	// Done is closed when the broker shuts down.
	Done chan struct{}
	// notify, when set, is called (instead of signalling Ready) when
	// changes are pending; it must not block.
	notify func()

	mu      sync.Mutex
	pending []*batch // in commit order; Take merges them
}

// batch is the new states of one commit in one account. The broker makes
// one per commit and account and hands the same batch to every
// subscription it concerns, so that a fan-out to many connections costs
// one append each; a batch is never changed once published.
type batch struct {
	acct   string
	types  []string
	states []string
}

// wants reports whether s asked for any type of bt.
func (s *Subscription) wants(bt *batch) bool {
	if s.types == nil {
		return true
	}
	for _, t := range bt.types {
		if s.types[t] {
			return true
		}
	}
	return false
}

// Subscribe registers a subscription for who; types nil means all types.
func (b *Broker) Subscribe(who store.PrincipalID, types map[string]bool) *Subscription {
	return b.subscribe(&Subscription{b: b, who: who, types: types, Ready: make(chan struct{}, 1), Done: make(chan struct{})})
}

// SubscribeFunc is Subscribe for a subscriber without a goroutine of its
// own waiting on Ready: notify is called, from the committing goroutine,
// whenever changes become pending and when the broker closes; it must not
// block.
func (b *Broker) SubscribeFunc(who store.PrincipalID, types map[string]bool, notify func()) *Subscription {
	return b.subscribe(&Subscription{b: b, who: who, types: types, Done: make(chan struct{}), notify: notify})
}

func (b *Broker) subscribe(s *Subscription) *Subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.Done)
		return s
	}
	if b.subs[s.who] == nil {
		b.subs[s.who] = map[*Subscription]struct{}{}
	}
	b.subs[s.who][s] = struct{}{}
	return s
}

// Close ends the subscription.
func (s *Subscription) Close() {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := b.subs[s.who]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(b.subs, s.who)
		}
	}
}

// Pending reports whether changes are pending.
func (s *Subscription) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) > 0
}

// Take returns the pending changes as one StateChange and clears them; nil
// when nothing is pending.
func (s *Subscription) Take() *StateChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil
	}
	changed := make(map[string]map[string]string, 1)
	for i, bt := range s.pending {
		m := changed[bt.acct]
		if m == nil {
			m = make(map[string]string, len(bt.types))
			changed[bt.acct] = m
		}
		for j, typ := range bt.types {
			if s.types == nil || s.types[typ] {
				if old, ok := m[typ]; !ok || !olderState(bt.states[j], old) {
					m[typ] = bt.states[j]
				}
			}
		}
		s.pending[i] = nil
	}
	s.pending = s.pending[:0]
	return &StateChange{Type: "StateChange", Changed: changed}
}

// olderState reports whether state a is older than b: both are decimal
// numbers (jmap.FormatState) and a is the smaller. Commits are announced
// once each is durable, by the goroutine that made it, so a later commit's
// batch may come first; other states are taken in the order they came.
func olderState(a, b string) bool {
	if !decimal(a) || !decimal(b) {
		return false
	}
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// decimal reports whether s is a number written in decimal digits.
func decimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// add queues bt and tells the subscriber.
func (s *Subscription) add(bt *batch) {
	if !s.wants(bt) {
		return
	}
	s.mu.Lock()
	s.pending = append(s.pending, bt)
	s.mu.Unlock()
	if s.notify != nil {
		s.notify()
		return
	}
	select {
	case s.Ready <- struct{}{}:
	default:
	}
}

// publish runs in the committing goroutine after a durable commit.
func (b *Broker) publish(changes []store.StateChange) {
	b.mu.Lock()
	if len(b.subs) == 0 || b.closed {
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	byAcct := map[store.AccountID][]store.StateChange{}
	system := map[string]bool{}
	for _, c := range changes {
		if c.Account == store.SystemAccount {
			system[c.Type] = true
			continue
		}
		byAcct[c.Account] = append(byAcct[c.Account], c)
	}
	if len(system) > 0 {
		b.publishSystem(system)
	}
	for acct, cs := range byAcct {
		who, err := b.aud.Principals(context.Background(), acct)
		if err != nil {
			b.log.Warn().Err(err).Str("account", string(acct)).Msg("push audience")
			continue
		}
		b.mu.Lock()
		var targets []*Subscription
		for _, p := range who {
			for s := range b.subs[p] {
				targets = append(targets, s)
			}
		}
		b.mu.Unlock()
		bt := &batch{acct: string(acct), types: make([]string, len(cs)), states: make([]string, len(cs))}
		for i, c := range cs {
			bt.types[i] = c.Type
			bt.states[i] = jmap.FormatState(uint64(c.State))
		}
		for _, s := range targets {
			s.add(bt)
		}
	}
}

// publishSystem tells every subscriber the new states, as they see them,
// of the system types a commit changed.
func (b *Broker) publishSystem(types map[string]bool) {
	ss, ok := b.aud.(SystemStates)
	if !ok {
		return
	}
	b.mu.Lock()
	who := make([]store.PrincipalID, 0, len(b.subs))
	for p := range b.subs {
		who = append(who, p)
	}
	b.mu.Unlock()
	for _, p := range who {
		states, err := ss.SystemStates(context.Background(), p)
		if err != nil {
			b.log.Warn().Err(err).Str("user", string(p)).Msg("push system states")
			continue
		}
		b.mu.Lock()
		var targets []*Subscription
		for s := range b.subs[p] {
			targets = append(targets, s)
		}
		b.mu.Unlock()
		for acct, m := range states {
			bt := &batch{acct: string(acct)}
			for typ, st := range m {
				if types[typ] {
					bt.types = append(bt.types, typ)
					bt.states = append(bt.states, st)
				}
			}
			if len(bt.types) == 0 {
				continue
			}
			for _, s := range targets {
				s.add(bt)
			}
		}
	}
}

// Close stops the broker and ends every subscription.
func (b *Broker) Close() {
	b.cancel()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, m := range b.subs {
		for s := range m {
			close(s.Done)
			if s.notify != nil {
				s.notify()
			}
		}
	}
	b.subs = map[store.PrincipalID]map[*Subscription]struct{}{}
}

// visibleStates returns the state of every type in every account who sees.
func (b *Broker) visibleStates(ctx context.Context, who store.PrincipalID) (map[string]map[string]string, error) {
	accts, err := b.aud.Accounts(ctx, who)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	err = b.st.View(ctx, func(tx store.Tx) error {
		for _, a := range accts {
			states, err := tx.States(a)
			if err != nil {
				return err
			}
			m := make(map[string]string, len(states))
			for typ, st := range states {
				m[typ] = jmap.FormatState(uint64(st))
			}
			out[string(a)] = m
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ss, ok := b.aud.(SystemStates); ok {
		states, err := ss.SystemStates(ctx, who)
		if err != nil {
			return nil, err
		}
		for a, m := range states {
			if out[string(a)] == nil {
				out[string(a)] = map[string]string{}
			}
			for typ, st := range m {
				out[string(a)][typ] = st
			}
		}
	}
	return out, nil
}
