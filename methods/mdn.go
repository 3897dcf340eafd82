package methods

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/store"
)

// sentKey maps the Message-ID of a submitted message to "account\x00
// submission id", so that an MDN delivered back to the sender finds its
// submission.
func sentKey(messageID string) string { return "sentmid\x00" + messageID }

// mdnFields returns the fields of the message/disposition-notification
// part of an MDN (RFC 8098 §3.1), lower-cased names to unfolded values,
// or nil when msg is not one.
func mdnFields(msg *mime.Message) map[string]string {
	for p := range msg.Parts() {
		if p.Type != "message/disposition-notification" {
			continue
		}
		out := map[string]string{}
		last := ""
		for _, line := range strings.Split(strings.ReplaceAll(string(msg.Content(p)), "\r\n", "\n"), "\n") {
			if line == "" {
				continue
			}
			if (line[0] == ' ' || line[0] == '\t') && last != "" {
				out[last] += " " + strings.TrimSpace(line)
				continue
			}
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(name))
			out[last] = strings.TrimSpace(value)
		}
		return out
	}
	return nil
}

// noteMDN records an MDN delivered into acct on the submission of the
// message it reports on, when that submission is in acct: its blob joins
// mdnBlobIds and a "displayed" disposition sets the recipient's displayed
// to yes (RFC 8621 §7, DeliveryStatus displayed).
func noteMDN(tx store.Tx, acct store.AccountID, msg *mime.Message, blob store.BlobID) error {
	f := mdnFields(msg)
	if f == nil {
		return nil
	}
	ids := mime.AsMessageIDs(f["original-message-id"])
	if len(ids) == 0 {
		return nil
	}
	v, err := tx.GetMeta(sentKey(ids[0]))
	if err != nil || v == nil {
		return err
	}
	a, sub, _ := strings.Cut(string(v), "\x00")
	if store.AccountID(a) != acct {
		return nil
	}
	b, err := tx.Get(acct, "EmailSubmission", sub)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	list, _ := m["mdnBlobIds"].([]any)
	m["mdnBlobIds"] = append(list, string(blob))
	// Disposition: action-mode/sending-mode; type (RFC 8098 §3.2.6).
	_, disp, _ := strings.Cut(f["disposition"], ";")
	if strings.EqualFold(strings.TrimSpace(disp), "displayed") {
		_, rcpt, _ := strings.Cut(f["final-recipient"], ";")
		rcpt = strings.Trim(strings.TrimSpace(rcpt), "<>")
		ds, _ := m["deliveryStatus"].(map[string]any)
		for k, st := range ds {
			if s, ok := st.(map[string]any); ok && strings.EqualFold(k, rcpt) {
				s["displayed"] = "yes"
			}
		}
	}
	if err := tx.BlobRef(acct, blob); err != nil {
		return err
	}
	out, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tx.Put(acct, "EmailSubmission", sub, out)
}
