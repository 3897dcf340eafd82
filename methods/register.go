package methods

import (
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// Options selects optional parts of the method set.
type Options struct {
	// TestTypes registers the Note type under CapTest, a record type that
	// exists to exercise the generic methods in conformance tests and
	// benchmarks. Off in production.
	TestTypes bool
	// Send turns on Identity, EmailSubmission and VacationResponse, with
	// the delivery agent and limits they use; nil leaves them out.
	Send *SendOptions
}

// Register adds every data type's methods to r and their account
// capabilities to accts.
func Register(r *jmap.Registry, st store.Store, accts *Accounts, opt Options) {
	registerCore(r)
	registerBlob(r, st, accts)
	registerMailbox(r, accts)
	registerEmail(r)
	registerSnippet(r)
	registerPrincipal(r, accts)
	if opt.Send != nil {
		registerSubmission(r, accts, *opt.Send)
		registerVacation(r, accts)
	}
	if opt.TestTypes {
		registerNote(r, accts)
	}
}
