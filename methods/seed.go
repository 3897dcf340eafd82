package methods

import (
	"context"
	"fmt"
	"time"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

// ImportMessages stores raw RFC 5322 messages in the mailbox with role of
// acct (provisioning the account first), as Email/import would, with
// receivedAt taken from each message's Date. It is for seeding accounts
// (demo data) and share notices, outside any request.
func ImportMessages(ctx context.Context, st store.Store, acct store.AccountID, role string, raws [][]byte) error {
	if err := offlineAccounts(st).provision(ctx, acct); err != nil {
		return err
	}
	in := make([]store.BlobInput, len(raws))
	msgs := make([]*mime.Message, len(raws))
	for i, raw := range raws {
		m, err := mime.Parse(raw)
		if err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		msgs[i] = m
		in[i] = store.BlobInput{Type: "message/rfc822", Data: raw}
	}
	infos, err := st.Blobs().UploadBatch(ctx, acct, in)
	if err != nil {
		return err
	}
	_, err = st.Update(ctx, func(tx store.Tx) error {
		var box string
		for o, err := range tx.Scan(acct, "Mailbox") {
			if err != nil {
				return err
			}
			if m, err := loadMailboxRole(o.Data); err == nil && m == role {
				box = o.ID
			}
		}
		if box == "" {
			return fmt.Errorf("no %s mailbox in %s", role, acct)
		}
		cnt := newCounter(tx, acct)
		same := func(id string) (string, bool) { return id, true }
		for i, m := range msgs {
			at := time.Now()
			if v, ok := mime.Last(m.Headers, "Date"); ok {
				if t := mime.AsDate(v); t != nil {
					at = *t
				}
			}
			_, serr, err := newEmail(tx, acct, cnt, emailFacts(m), infos[i], map[string]any{box: true}, nil, same,
				func() (time.Time, *jmap.SetError) { return at, nil })
			if err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("message %d: %s", i, serr.Error())
			}
		}
		return cnt.flush()
	})
	return err
}
