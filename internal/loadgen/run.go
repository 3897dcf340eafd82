// Package loadgen drives any JMAP server the way mail clients do, and
// measures it: it imports a corpus (generated or read from an mbox or
// maildir), runs simulated clients with a configurable mix of operations,
// and measures push delivery over EventSource and WebSocket. It speaks only
// JMAP (RFC 8620, RFC 8621, RFC 9404, RFC 8887) and finds everything from
// the session resource, so the same run can be pointed at other servers.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Config is one run of the tool.
type Config struct {
	// SessionURL is the session resource (required).
	SessionURL string
	// Users are the logins (at least one); messages and clients are
	// spread over them in turn.
	Users []User
	// Seed makes the generated corpus and the clients' choices repeatable.
	Seed uint64
	// Messages is how many messages to import; 0 imports none.
	Messages int
	// Corpus is an mbox file or maildir to import instead of generated mail.
	Corpus string
	// Importers is the number of parallel import workers.
	Importers int
	// Clients is the number of simulated clients; 0 skips the workload.
	Clients int
	// Duration is how long the clients run.
	Duration time.Duration
	// Mix is the operation mix (see DefaultMix).
	Mix string
	// Think is the mean pause between a client's operations.
	Think time.Duration
	// Timeout bounds each HTTP request.
	Timeout time.Duration
	// Push is the number of push connections per transport; 0 skips push.
	Push int
	// PushDuration is how long changes are made for the push test.
	PushDuration time.Duration
	// PID is the server's process id, for its memory; 0 when not local.
	PID int
	// Label names the run in reports.
	Label string
	// Quiet turns the progress lines off.
	Quiet bool
	// Log receives notices as they happen (may be nil).
	Log io.Writer
}

// Run performs the configured steps. When ctx ends early it returns the
// figures so far with Interrupted set, and no error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.SessionURL == "" || len(cfg.Users) == 0 {
		return nil, errors.New("a session URL and at least one user are needed")
	}
	if cfg.Mix == "" {
		cfg.Mix = DefaultMix
	}
	mix, err := ParseMix(cfg.Mix)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	notices := &Notices{}
	if cfg.Log != nil {
		notices.Print = func(s string) { fmt.Fprintln(cfg.Log, "notice:", s) }
	}
	progress := NewProgress(cfg.Quiet)
	rep := &Report{Tool: "jmapload", Started: time.Now().UTC(), SessionURL: cfg.SessionURL, Label: cfg.Label,
		Users: len(cfg.Users), Seed: cfg.Seed, RSS: map[string]RSS{}}
	finish := func() (*Report, error) {
		rep.Notices = notices.List()
		if ctx.Err() != nil {
			rep.Interrupted = true
		}
		if len(rep.RSS) == 0 {
			rep.RSS = nil
		}
		return rep, nil
	}
	rss := func(step string) {
		if cfg.PID > 0 {
			rep.RSS[step] = ReadRSS(cfg.PID)
		}
	}
	rss("start")

	var accounts []*account
	var clients []*Client
	for _, u := range cfg.Users {
		c := NewClient(cfg.SessionURL, u.Email, u.Password, cfg.Timeout)
		a, err := discover(ctx, c, u, notices)
		if err != nil {
			if ctx.Err() != nil {
				return finish()
			}
			return nil, err
		}
		accounts = append(accounts, a)
		clients = append(clients, c)
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for k := range accounts[0].session.Capabilities {
		rep.Capabilities = append(rep.Capabilities, k)
	}
	slices.Sort(rep.Capabilities)

	if cfg.Messages != 0 {
		var src Source
		rep.Corpus = fmt.Sprintf("generated, seed %d", cfg.Seed)
		total := cfg.Messages
		if cfg.Corpus != "" {
			s, closer, err := OpenCorpus(cfg.Corpus, cfg.Messages)
			if err != nil {
				return nil, fmt.Errorf("corpus: %w", err)
			}
			defer closer.Close()
			src = s
			rep.Corpus = cfg.Corpus
			if cfg.Messages < 0 {
				total = 0
			}
		} else {
			src = NewGenerator(cfg.Seed, cfg.Messages)
		}
		im := &Importer{Accounts: accounts, Clients: clients, Workers: cfg.Importers, Seed: cfg.Seed,
			Notices: notices, Rec: NewRecorder(), Progress: progress, Total: total}
		rep.Import, err = im.Run(ctx, src)
		rss("import")
		if err != nil {
			return nil, err
		}
	}
	if ctx.Err() != nil {
		return finish()
	}

	if cfg.Clients > 0 && cfg.Duration > 0 {
		if !accounts[0].session.Has(CapMail) {
			notices.Add("server lacks %s: workload skipped", CapMail)
		} else {
			wl := &Workload{Accounts: accounts, Clients: cfg.Clients, Duration: cfg.Duration, Mix: mix,
				Think: cfg.Think, Timeout: cfg.Timeout, Seed: cfg.Seed, Rec: NewRecorder(), Progress: progress, Notices: notices}
			rep.Workload = wl.Run(ctx)
			rss("workload")
		}
	}
	if ctx.Err() != nil {
		return finish()
	}

	if cfg.Push > 0 {
		pt := &PushTest{Accounts: accounts, Conns: cfg.Push, Duration: cfg.PushDuration, Wait: 5 * time.Second,
			PID: cfg.PID, Notices: notices, Progress: progress}
		if pt.Duration <= 0 {
			pt.Duration = 10 * time.Second
		}
		rep.Push = pt.Run(ctx)
		rss("push")
	}
	return finish()
}
