package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmapd/jmapd/internal/acl"
	"github.com/jmapd/jmapd/internal/admin"
	"github.com/jmapd/jmapd/methods"
	"github.com/jmapd/jmapd/server"
	"github.com/jmapd/jmapd/store"
)

// demoMessage writes one sample message with CRLF line ends.
func demoMessage(from, to, subject, id, inReplyTo string, at time.Time, body string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@example.test>\r\n",
		from, to, subject, at.Format(time.RFC1123Z), id)
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s@example.test>\r\nReferences: <%s@example.test>\r\n", inReplyTo, inReplyTo)
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	return []byte(b.String())
}

// seedDemoMail puts a few sample messages in the demo users' inboxes: a
// welcome and a short conversation between them.
func seedDemoMail(ctx context.Context, st store.Store) error {
	now := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	alice := "Alice <" + admin.DemoAlice + ">"
	bob := "Bob <" + admin.DemoBob + ">"
	welcome := func(to string) []byte {
		return demoMessage("jmapd <postmaster@example.test>", to, "Welcome to jmapd", "welcome-"+strings.Split(to, "@")[0],
			"", now, "Hello!\n\nThis is a demo account on jmapd, a JMAP mail server.\n"+
				"Point any JMAP client at the session URL and explore.\n")
	}
	mail := map[string][][]byte{
		admin.DemoAlice: {
			welcome(admin.DemoAlice),
			demoMessage(bob, alice, "Lunch on Friday?", "lunch", "", now.Add(30*time.Minute),
				"Hi Alice,\n\nShall we try the new café on Friday at noon?\n\nBob\n"),
		},
		admin.DemoSupport: {
			demoMessage("Carol Customer <carol@customer.test>", "Support <"+admin.DemoSupport+">", "The printer is jammed again",
				"printer", "", now.Add(50*time.Minute),
				"Hello support,\n\nthe printer on the second floor is jammed again. Could someone have a look?\n\nCarol\n"),
		},
		admin.DemoBob: {
			welcome(admin.DemoBob),
			demoMessage(alice, bob, "Re: Lunch on Friday?", "lunch-re", "lunch", now.Add(45*time.Minute),
				"Friday at noon works. See you there!\n\nAlice\n\n> Shall we try the new café on Friday at noon?\n"),
		},
	}
	for email, raws := range mail {
		var acct store.AccountID
		err := st.View(ctx, func(tx store.Tx) error {
			p, err := tx.Principals().ByEmail(email)
			if err == nil {
				acct = p.Account
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("find %s: %w", email, err)
		}
		if err := methods.ImportMessages(ctx, st, acct, "inbox", raws); err != nil {
			return fmt.Errorf("seed %s: %w", email, err)
		}
	}
	return shareDemo(ctx, st)
}

// shareDemo lets the team (Alice and Bob) work in the support mailbox and
// subscribes them to it, so that their clients show it at once.
func shareDemo(ctx context.Context, st store.Store) error {
	ids := map[string]*store.Principal{}
	err := st.View(ctx, func(tx store.Tx) error {
		for _, e := range []string{admin.DemoSupport, admin.DemoTeam, admin.DemoAlice, admin.DemoBob} {
			p, err := tx.Principals().ByEmail(e)
			if err != nil {
				return fmt.Errorf("find %s: %w", e, err)
			}
			ids[e] = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	support := ids[admin.DemoSupport].Account
	if err := server.Share(ctx, st, support, ids[admin.DemoTeam].ID, "", acl.Write); err != nil {
		return fmt.Errorf("share %s: %w", admin.DemoSupport, err)
	}
	for _, u := range []string{admin.DemoAlice, admin.DemoBob} {
		if err := methods.Subscribe(ctx, st, support, ids[u].ID); err != nil {
			return fmt.Errorf("subscribe %s: %w", u, err)
		}
	}
	return nil
}
