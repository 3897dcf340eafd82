package jmap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/store"
)

// Caller is the authenticated principal making a request.
type Caller struct {
	Principal store.PrincipalID
	Username  string
	// Credential names the credential the caller logged in with, for
	// what must end when it is revoked (push connections, and
	// PushSubscriptions: RFC 8620 §7.2); empty when unknown.
	Credential string
}

type callerKey struct{}

// WithCaller returns ctx carrying the authenticated caller.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the authenticated caller of ctx, or nil.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// Account is an account as one caller sees it (RFC 8620 §2).
type Account struct {
	ID         store.AccountID `json:"-"`
	Name       string          `json:"name"`
	IsPersonal bool            `json:"isPersonal"`
	IsReadOnly bool            `json:"isReadOnly"`
	// Capabilities maps each capability URN the account supports to its
	// account-level object.
	Capabilities map[string]any `json:"accountCapabilities"`
}

// Accounts tells which accounts a caller may use; the rights model lives
// behind it.
type Accounts interface {
	// Session returns the accounts the session lists, the primary account
	// per capability and the session state.
	Session(ctx context.Context, c *Caller) (accts []*Account, primary map[string]store.AccountID, state string, err error)
	// Lookup returns an account the caller may reach, listed or not, or
	// store.ErrNotFound (answered as accountNotFound).
	Lookup(ctx context.Context, c *Caller, id store.AccountID) (*Account, error)
	// SessionState returns the state of the caller's session alone, as
	// every API response carries it (RFC 8620 §3.4).
	SessionState(ctx context.Context, c *Caller) (string, error)
}

// Handler runs one method call and returns its response arguments.
type Handler func(ctx context.Context, c *Call) (any, error)

type method struct {
	capability string
	handler    Handler
}

// Registry holds the methods and capabilities the server offers and runs
// requests against them.
type Registry struct {
	Store    store.Store
	Accounts Accounts
	Limits   Limits
	methods  map[string]method
	caps     map[string]any
	// OnCall, when set, observes every method call's name, error type
	// (empty on success) and duration in seconds.
	OnCall func(name string, errType ErrorType, seconds float64)
}

// NewRegistry returns a Registry with the core capability registered.
func NewRegistry(st store.Store, accts Accounts, lim Limits) *Registry {
	r := &Registry{Store: st, Accounts: accts, Limits: lim, methods: map[string]method{}, caps: map[string]any{}}
	r.AddCapability(CapCore, coreCapability{Limits: lim, CollationAlgorithms: Collations()})
	return r
}

type coreCapability struct {
	Limits
	CollationAlgorithms []string `json:"collationAlgorithms"`
}

// AddCapability advertises a capability with its session-level object.
func (r *Registry) AddCapability(urn string, sessionValue any) { r.caps[urn] = sessionValue }

// Capabilities returns the advertised capabilities.
func (r *Registry) Capabilities() map[string]any { return r.caps }

// KnownCapability reports whether urn is advertised.
func (r *Registry) KnownCapability(urn string) bool {
	_, ok := r.caps[urn]
	return ok
}

// Handle registers h for the method name, available when the request uses
// capability.
func (r *Registry) Handle(name, capability string, h Handler) {
	if _, ok := r.caps[capability]; !ok {
		panic("jmap: method " + name + " registered for unknown capability " + capability)
	}
	r.methods[name] = method{capability, h}
}

// Call is one method call being run.
type Call struct {
	Name   string
	ID     string
	Args   json.RawMessage
	Caller *Caller
	Using  map[string]bool
	reg    *Registry
	req    *requestRun
	extra  []Invocation
	memo   map[any]any
}

type callKey struct{}

// CallFrom returns the method call ctx belongs to, or nil outside a call.
func CallFrom(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

// Memo returns what SetMemo stored under key during this call, or nil: a
// cache for work done once per call, such as the caller's rights.
func (c *Call) Memo(key any) any { return c.memo[key] }

// SetMemo stores v under key for the rest of the call.
func (c *Call) SetMemo(key, v any) {
	if c.memo == nil {
		c.memo = map[any]any{}
	}
	c.memo[key] = v
}

type requestRun struct {
	created map[string]string
	prev    []*previousResponse
	// own is the caller's own account once a call of the request looked
	// it up: what it says depends on nothing a method call changes.
	own *Account
	// later holds back the durability waits of the calls that chose
	// SyncLater; deferred is set by the call running now when it does.
	later    store.Deferral
	deferred bool
}

// SyncLater returns ctx under which the call's writes return once
// committed, without waiting for the disk: the request waits once, after
// its last call and before its response is sent, and announces their
// changes then. A write that has no effect outside the store (an upload,
// an import, an Email/set) may use it, so that a request of several
// writes waits for the disk once.
func (c *Call) SyncLater(ctx context.Context) context.Context {
	c.req.deferred = true
	return store.DeferSync(ctx, &c.req.later)
}

// Registry returns the registry running the call.
func (c *Call) Registry() *Registry { return c.reg }

// Store returns the store.
func (c *Call) Store() store.Store { return c.reg.Store }

// Limits returns the core limits.
func (c *Call) Limits() Limits { return c.reg.Limits }

// Decode reads the call's arguments into v, rejecting unknown arguments and
// values of the wrong type with invalidArguments.
func (c *Call) Decode(v any) error {
	dec := json.NewDecoder(bytes.NewReader(c.Args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "json: ")
		return InvalidArguments("%s", msg)
	}
	return nil
}

// Account returns the account id names if the caller may reach it and it
// supports capability; otherwise accountNotFound or
// accountNotSupportedByMethod.
func (c *Call) Account(ctx context.Context, id string, capability string) (*Account, error) {
	return c.account(ctx, id, capability, ErrAccountNotFound, ErrAccountNotSupportedByMethod)
}

// FromAccount is Account for the fromAccountId of /copy, answering
// fromAccountNotFound or fromAccountNotSupportedByMethod.
func (c *Call) FromAccount(ctx context.Context, id string, capability string) (*Account, error) {
	return c.account(ctx, id, capability, ErrFromAccountNotFound, ErrFromAccountNotSupportedByMethod)
}

func (c *Call) account(ctx context.Context, id, capability string, notFound, notSupported ErrorType) (*Account, error) {
	if id == "" {
		return nil, InvalidArguments("accountId is required")
	}
	var a *Account
	own := c.req != nil && c.Caller != nil && store.AccountID(c.Caller.Principal) == store.AccountID(id)
	if own && c.req.own != nil {
		a = c.req.own
	} else {
		var err error
		a, err = c.reg.Accounts.Lookup(ctx, c.Caller, store.AccountID(id))
		if errors.Is(err, store.ErrNotFound) {
			return nil, NewMethodError(notFound, "")
		}
		if err != nil {
			return nil, err
		}
		if own {
			c.req.own = a
		}
	}
	// Every account supports the core methods (Blob/copy) without listing
	// the core capability among its accountCapabilities.
	if _, ok := a.Capabilities[capability]; !ok && capability != CapCore {
		return nil, NewMethodError(notSupported, "")
	}
	return a, nil
}

// ResolveID turns "#creationId" into the id created earlier in the request;
// other ids are returned as they are. ok is false for an unknown creation id.
func (c *Call) ResolveID(id string) (string, bool) {
	if !strings.HasPrefix(id, "#") {
		return id, true
	}
	real, ok := c.req.created[id[1:]]
	return real, ok
}

// Created records that creation id cid became id, for later calls and the
// response's createdIds.
func (c *Call) Created(cid, id string) { c.req.created[cid] = id }

// AddResponse appends another response after this call's own, with the same
// method call id (as /copy does with its implicit /set).
func (c *Call) AddResponse(name string, args any) error {
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	c.extra = append(c.extra, Invocation{Name: name, Args: b, CallID: c.ID})
	return nil
}

// Execute runs every method call of req in order for the caller and returns
// the response (RFC 8620 §3.3-§3.7). Every Args of the response is the
// output of json.Marshal (or a handler's Encoded bytes, held to the same),
// compact and HTML-escaped: responseParts writes them as they are.
func (r *Registry) Execute(ctx context.Context, caller *Caller, req *Request, sessionState string) *Response {
	using := make(map[string]bool, len(req.Using))
	for _, u := range req.Using {
		using[u] = true
	}
	run := &requestRun{created: map[string]string{}}
	for k, v := range req.CreatedIDs {
		run.created[k] = v
	}
	resp := &Response{MethodResponses: make([]Invocation, 0, len(req.MethodCalls)), SessionState: sessionState}
	var deferred []int // responses of calls that used SyncLater
	for _, inv := range req.MethodCalls {
		run.deferred = false
		for _, out := range r.call(ctx, caller, using, run, inv) {
			if run.deferred {
				deferred = append(deferred, len(resp.MethodResponses))
			}
			resp.MethodResponses = append(resp.MethodResponses, out)
			run.prev = append(run.prev, &previousResponse{name: out.Name, callID: out.CallID, args: out.Args})
		}
	}
	if err := run.later.Settle(); err != nil {
		// What those calls wrote is not known to be on disk: they failed.
		zerolog.Ctx(ctx).Error().Err(err).Msg("settle the request's writes")
		for _, i := range deferred {
			resp.MethodResponses[i] = errorInvocation(NewMethodError(ErrServerFail, ""), resp.MethodResponses[i].CallID)
		}
	}
	if req.CreatedIDs != nil {
		resp.CreatedIDs = &run.created
	}
	return resp
}

func errorInvocation(e *MethodError, callID string) Invocation {
	b, _ := json.Marshal(e)
	return Invocation{Name: "error", Args: b, CallID: callID}
}

func (r *Registry) call(ctx context.Context, caller *Caller, using map[string]bool, run *requestRun, inv Invocation) (out []Invocation) {
	start := nowSeconds()
	var errType ErrorType
	defer func() {
		if r.OnCall != nil {
			r.OnCall(inv.Name, errType, nowSeconds()-start)
		}
	}()
	fail := func(e *MethodError) []Invocation {
		errType = e.Type
		return []Invocation{errorInvocation(e, inv.CallID)}
	}
	m, ok := r.methods[inv.Name]
	if !ok || !using[m.capability] {
		return fail(NewMethodError(ErrUnknownMethod, ""))
	}
	args := inv.Args
	if mayHaveReferences(args) {
		var merr *MethodError
		if args, merr = resolveReferences(args, run.prev); merr != nil {
			return fail(merr)
		}
	}
	c := &Call{Name: inv.Name, ID: inv.CallID, Args: args, Caller: caller, Using: using, reg: r, req: run}
	res, err := r.safeCall(context.WithValue(ctx, callKey{}, c), m.handler, c)
	if err != nil {
		return fail(toMethodError(ctx, inv.Name, err))
	}
	var b []byte
	if enc, ok := res.(Encoded); ok {
		b = enc // already json.Marshal's bytes
	} else if b, err = json.Marshal(res); err != nil {
		return fail(toMethodError(ctx, inv.Name, fmt.Errorf("encode response: %w", err)))
	}
	out = append(out, Invocation{Name: inv.Name, Args: b, CallID: inv.CallID})
	return append(out, c.extra...)
}

// mayHaveReferences reports whether args may hold a "#name" argument
// (RFC 8620 §3.7): a member name starting with "#", written "# or, escaped,
// "\u0023. Arguments without either are passed on as they are, which is
// what resolveReferences returns for them, without decoding them first.
func mayHaveReferences(args json.RawMessage) bool {
	return bytes.Contains(args, []byte(`"#`)) || bytes.Contains(args, []byte(`\u0023`))
}

func (r *Registry) safeCall(ctx context.Context, h Handler, c *Call) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			zerolog.Ctx(ctx).Error().Str("method", c.Name).Interface("panic", p).
				Str("stack", string(debug.Stack())).Msg("method panicked")
			res, err = nil, NewMethodError(ErrServerFail, "")
		}
	}()
	return h(ctx, c)
}

// toMethodError turns an error from a handler into the answer the client
// sees; anything unexpected becomes serverFail with its detail in the log.
func toMethodError(ctx context.Context, name string, err error) *MethodError {
	var me *MethodError
	switch {
	case errors.As(err, &me):
		return me
	case errors.Is(err, store.ErrConflict):
		return NewMethodError(ErrServerUnavailable, "too many concurrent changes, try again")
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		// The client went away: nobody reads the answer, nothing failed.
		zerolog.Ctx(ctx).Debug().Err(err).Str("method", name).Msg("method abandoned")
		return NewMethodError(ErrServerUnavailable, "the request was cancelled")
	default:
		zerolog.Ctx(ctx).Error().Err(err).Str("method", name).Msg("method failed")
		return NewMethodError(ErrServerFail, "")
	}
}
