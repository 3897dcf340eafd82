package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/store"
)

// Job is one message waiting in the outbound queue for some of its
// recipients.
type Job struct {
	// ID names the job; the EmailSubmission id when it has one.
	ID string `json:"id"`
	// Account is the sender's account: it holds the message blob, gets
	// DSNs and the statuses of Submission.
	Account    store.AccountID `json:"account"`
	Submission string          `json:"submission,omitempty"`
	// From is the envelope sender; "" for a bounce or an auto-reply, which
	// never get a DSN.
	From  string   `json:"from"`
	Rcpts []string `json:"rcpts"`
	// Blob is the message as sent (Bcc removed, signed), in Account; Raw
	// holds a small message made by the server itself instead.
	Blob store.BlobID `json:"blob,omitempty"`
	Raw  []byte       `json:"raw,omitempty"`
	// NotBefore is when the job is next tried.
	NotBefore time.Time `json:"notBefore"`
	// Hold marks a delayed submission not yet released: until it is, it
	// can be canceled and no recipient has it.
	Hold bool `json:"hold,omitempty"`
	// Started is the first attempt, from which RetryFor counts.
	Started  time.Time `json:"started,omitzero"`
	Attempts int       `json:"attempts,omitempty"`
	// Last is the last temporary failure per recipient.
	Last map[string]string `json:"last,omitempty"`
}

const (
	queuePrefix = "outq\x00"
	queueIDPref = "outqid\x00"
)

func queueKey(at time.Time, id string) string {
	return fmt.Sprintf("%s%016x\x00%s", queuePrefix, uint64(at.UnixNano()), id)
}

func queueIDKey(id string) string { return queueIDPref + id }

// Enqueue adds j to the queue within tx, taking a reference to its blob.
// Its id must be new; when empty, one is made.
func (a *Agent) Enqueue(tx store.Tx, j *Job) error {
	if j.ID == "" {
		id, err := tx.NewID()
		if err != nil {
			return err
		}
		j.ID = "q" + id
	}
	if j.Blob != "" {
		if err := tx.BlobRef(j.Account, j.Blob); err != nil {
			return fmt.Errorf("reference queued blob: %w", err)
		}
	}
	return putJob(tx, j)
}

func putJob(tx store.Tx, j *Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	k := queueKey(j.NotBefore, j.ID)
	if err := tx.PutMeta(k, b); err != nil {
		return err
	}
	return tx.PutMeta(queueIDKey(j.ID), []byte(k))
}

// loadJob returns the queued job id, or nil when it is not queued.
func loadJob(tx store.Tx, id string) (*Job, error) {
	k, err := tx.GetMeta(queueIDKey(id))
	if err != nil || k == nil {
		return nil, err
	}
	b, err := tx.GetMeta(string(k))
	if err != nil || b == nil {
		return nil, err
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("queued job %s: %w", id, err)
	}
	return &j, nil
}

// removeJob takes a job out of the queue (not its blob reference).
func removeJob(tx store.Tx, id string) error {
	k, err := tx.GetMeta(queueIDKey(id))
	if err != nil || k == nil {
		return err
	}
	if err := tx.DeleteMeta(string(k)); err != nil {
		return err
	}
	return tx.DeleteMeta(queueIDKey(id))
}

// finishJob removes a job and releases its blob.
func finishJob(tx store.Tx, j *Job) error {
	if err := removeJob(tx, j.ID); err != nil {
		return err
	}
	if j.Blob != "" {
		if err := tx.BlobUnref(j.Account, j.Blob); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// replaceJob writes j again under its (maybe new) NotBefore.
func replaceJob(tx store.Tx, j *Job) error {
	if err := removeJob(tx, j.ID); err != nil {
		return err
	}
	return putJob(tx, j)
}

// Cancel removes a held job within tx; ok is false when the job is not
// held any more (released, sent or gone), and then nothing changes.
func (a *Agent) Cancel(tx store.Tx, id string) (ok bool, err error) {
	j, err := loadJob(tx, id)
	if err != nil || j == nil || !j.Hold {
		return false, err
	}
	return true, finishJob(tx, j)
}

// Run works the queue until ctx ends: every job whose time has come is
// tried, and the worker sleeps until the next one is due or something is
// enqueued. Jobs left by an earlier run are picked up at once.
func (a *Agent) Run(ctx context.Context) {
	cancel := a.st.Subscribe(func([]store.StateChange) { a.Wake() })
	defer cancel()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := a.runDue(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := time.Minute
		if !next.IsZero() {
			wait = min(max(next.Sub(a.now()), 0), time.Minute)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// runDue tries every due job and returns when the next one is due (zero:
// none queued).
func (a *Agent) runDue(ctx context.Context) time.Time {
	for ctx.Err() == nil {
		var j *Job
		var at time.Time
		err := a.st.View(ctx, func(tx store.Tx) error {
			for m, err := range tx.ScanMeta(queuePrefix) {
				if err != nil {
					return err
				}
				rest := strings.TrimPrefix(m.Key, queuePrefix)
				ts, _, _ := strings.Cut(rest, "\x00")
				n, err := strconv.ParseUint(ts, 16, 64)
				if err != nil {
					return fmt.Errorf("queue key %q: %w", m.Key, err)
				}
				at = time.Unix(0, int64(n))
				if at.After(a.now()) {
					return nil
				}
				j = &Job{}
				return json.Unmarshal(m.Value, j)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error().Err(err).Msg("read outbound queue")
			}
			return a.now().Add(5 * time.Second)
		}
		if j == nil {
			return at
		}
		if err := a.process(ctx, j); err != nil {
			if ctx.Err() != nil {
				return time.Time{}
			}
			a.log.Error().Err(err).Str("job", j.ID).Msg("outbound job failed; retrying later")
			if err := a.postpone(ctx, j.ID, a.now().Add(30*time.Second)); err != nil {
				return a.now().Add(30 * time.Second)
			}
		}
	}
	return time.Time{}
}

// postpone moves a job to a later time.
func (a *Agent) postpone(ctx context.Context, id string, at time.Time) error {
	_, err := a.st.Update(ctx, func(tx store.Tx) error {
		j, err := loadJob(tx, id)
		if err != nil || j == nil {
			return err
		}
		j.NotBefore = at
		return replaceJob(tx, j)
	})
	return err
}

// message returns the job's message.
func (a *Agent) message(ctx context.Context, j *Job) ([]byte, error) {
	if j.Blob == "" {
		return j.Raw, nil
	}
	_, r, err := a.st.Blobs().Open(ctx, j.Account, j.Blob, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("open queued message: %w", err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// process tries one job: local recipients get their copy and a held job
// is released, in one transaction; the rest go through the relay.
func (a *Agent) process(ctx context.Context, j *Job) error {
	raw, err := a.message(ctx, j)
	if err != nil {
		return err
	}
	local := map[string][]Target{}
	var external []string
	err = a.st.View(ctx, func(tx store.Tx) error {
		for _, r := range j.Rcpts {
			t, isLocal, err := a.Resolve(tx, r)
			if err != nil {
				return err
			}
			if isLocal {
				local[r] = t
			} else {
				external = append(external, r)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(local) > 0 || j.Hold {
		gone, err := a.deliverQueued(ctx, j, raw, local, external)
		if err != nil || gone {
			return err
		}
	}
	if len(external) == 0 {
		return nil
	}
	return a.relayJob(ctx, j, raw, external)
}

// deliverQueued gives local recipients of a queued job their copies and
// releases it if it was held (from then on it cannot be canceled), leaving
// the job with the external recipients. gone reports a job canceled
// meanwhile.
func (a *Agent) deliverQueued(ctx context.Context, j *Job, raw []byte, local map[string][]Target, external []string) (gone bool, err error) {
	copies, err := a.PrepareLocal(ctx, j.Account, j.From, j.ID, raw, nil, local)
	if err != nil {
		return false, err
	}
	_, err = a.st.Update(ctx, func(tx store.Tx) error {
		cur, err := loadJob(tx, j.ID)
		if err != nil {
			return err
		}
		gone = cur == nil
		if gone {
			return nil
		}
		status, err := a.DeliverLocal(tx, copies, j.From)
		if err != nil {
			return err
		}
		if j.Submission != "" {
			if err := a.host.Report(tx, j.Account, j.Submission, status, true, ""); err != nil {
				return err
			}
		}
		cur.Rcpts, cur.Hold = external, false
		if len(external) == 0 {
			return finishJob(tx, cur)
		}
		return replaceJob(tx, cur)
	})
	j.Rcpts, j.Hold = external, false
	return gone, err
}

// Copy is one recipient's copy of a locally delivered message, stamped and
// stored.
type Copy struct {
	Rcpt   string
	Target Target
	// Raw is the copy's content; nil when it is stored as a composite blob
	// (its trace fields in front of the message as sent).
	Raw  []byte
	Blob store.BlobInfo
	// Msg is the message the copy was stamped from, parsed once for all
	// copies.
	Msg *Parsed
	// up, when set, holds the blobs DeliverLocal stores first, within its
	// transaction; the copy's blob is number n of them.
	up *pendingBlobs
	n  int
}

// pendingBlobs are blobs of acct to be stored by the delivering
// transaction.
type pendingBlobs struct {
	acct store.AccountID
	in   []store.BlobInput
}

// maxCopiesInTx is the largest message whose copies the delivering
// transaction stores itself; a larger one is stored before it.
const maxCopiesInTx = 1 << 20

// PrepareLocal makes, for every target of every local recipient, a copy of
// raw with its own trace fields in front, to be stored as blobs of acct
// (the sender's account, which the copies are referenced from by the
// records Deliver makes): raw once, and each copy as a composite blob of
// its trace fields and a reference to raw. A small message is stored by
// DeliverLocal in the delivering transaction, a larger one here, in one
// commit. It runs before the transaction that delivers them. msg is raw
// parsed, when the caller has it, or nil.
func (a *Agent) PrepareLocal(ctx context.Context, acct store.AccountID, from, id string, raw []byte, msg *mime.Message, local map[string][]Target) ([]Copy, error) {
	return a.PrepareReceived(ctx, acct, "JMAP", from, id, raw, msg, local)
}

// PrepareReceived is PrepareLocal for a message that reached the server
// by proto ("LMTP"), named in the copies' Received fields.
func (a *Agent) PrepareReceived(ctx context.Context, acct store.AccountID, proto, from, id string, raw []byte, msg *mime.Message, local map[string][]Target) ([]Copy, error) {
	now := a.now()
	base := store.BlobIDOf(raw)
	var copies []Copy
	up := &pendingBlobs{acct: acct, in: []store.BlobInput{{Type: "message/rfc822", Data: raw, ID: base}}}
	for rcpt, ts := range local {
		for _, t := range ts {
			copies = append(copies, Copy{Rcpt: rcpt, Target: t, up: up, n: len(up.in)})
			trace := a.traceFields(proto, from, t.Address, id, now, 0)
			// The digests are worked out here rather than in the
			// delivering transaction, where writers run in turn.
			up.in = append(up.in, store.BlobInput{Type: "message/rfc822", Data: trace, Base: base,
				ID: store.CompositeID(trace, raw)})
		}
	}
	if len(copies) == 0 {
		return nil, nil
	}
	parsed := &Parsed{Msg: msg}
	if msg == nil {
		var err error
		if parsed, err = NewParsed(raw); err != nil {
			return nil, fmt.Errorf("parse delivered message: %w", err)
		}
	}
	for i := range copies {
		copies[i].Msg = parsed
	}
	inTx, err := a.blobsInTx(ctx)
	if err != nil {
		return nil, err
	}
	if inTx && len(raw) <= maxCopiesInTx {
		return copies, nil
	}
	infos, err := a.st.Blobs().UploadBatch(ctx, acct, up.in)
	if err != nil {
		return nil, fmt.Errorf("store delivered copies: %w", err)
	}
	for i := range copies {
		copies[i].Blob, copies[i].up = infos[copies[i].n], nil
	}
	return copies, nil
}

// blobsInTx reports whether the store's transactions can store blobs.
func (a *Agent) blobsInTx(ctx context.Context) (bool, error) {
	switch a.txBlobs.Load() {
	case 1:
		return true, nil
	case 2:
		return false, nil
	}
	var ok bool
	if err := a.st.View(ctx, func(tx store.Tx) error {
		_, ok = tx.(store.BlobTx)
		return nil
	}); err != nil {
		return false, err
	}
	if ok {
		a.txBlobs.Store(1)
	} else {
		a.txBlobs.Store(2)
	}
	return ok, nil
}

// DeliverLocal puts prepared copies into their accounts' Inboxes within tx
// (storing them first when PrepareLocal left that to it) and returns the
// status of each recipient.
func (a *Agent) DeliverLocal(tx store.Tx, copies []Copy, from string) (map[string]Status, error) {
	var stored []store.BlobInfo
	if len(copies) > 0 && copies[0].up != nil {
		bt, ok := tx.(store.BlobTx)
		if !ok {
			return nil, errors.New("the store cannot store the copies in the transaction")
		}
		var err error
		// Each copy is referenced by the email Deliver makes of it, and
		// the message by its copies, all in this transaction: no upload
		// grants to keep, or to collect a day later.
		in := slices.Clone(copies[0].up.in)
		for i := range in {
			in[i].Held = true
		}
		if stored, err = bt.PutBlobs(copies[0].up.acct, in); err != nil {
			return nil, fmt.Errorf("store delivered copies: %w", err)
		}
	}
	status := map[string]Status{}
	for _, c := range copies {
		blob := c.Blob
		if c.up != nil {
			blob = stored[c.n]
		}
		if err := a.host.Deliver(tx, c.Target.Account, blob, c.Raw, c.Msg, from); err != nil {
			return nil, fmt.Errorf("deliver to %s: %w", c.Target.Account, err)
		}
		status[c.Rcpt] = Local()
	}
	return status, nil
}

// backoff is the wait after the n-th failed attempt: RetryFirst doubling,
// at most an hour.
func (r *Relay) backoff(n int) time.Duration {
	d := r.RetryFirst
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// relayJob sends a job to its external recipients through the relay and
// records the outcome: delivered, refused (with a DSN to the sender), or
// tried again later until RetryFor has passed.
func (a *Agent) relayJob(ctx context.Context, j *Job, raw []byte, external []string) error {
	now := a.now()
	if j.Started.IsZero() {
		j.Started = now
	}
	j.Attempts++
	var replies map[string]Reply
	if a.relay == nil {
		replies = map[string]Reply{}
		for _, r := range external {
			replies[r] = Reply{Code: 550, Text: "5.7.1 no relay is configured for mail to other servers"}
		}
	} else {
		replies = a.send(ctx, j.From, external, raw)
	}
	status := map[string]Status{}
	var failed []Failure
	var again []string
	last := map[string]string{}
	giveUp := a.relay == nil || now.Sub(j.Started) >= a.relay.RetryFor
	for _, r := range external {
		rep := replies[r]
		switch {
		case rep.Code >= 200 && rep.Code < 300:
			// Relayed: whether it reached the mailbox is not known
			// (RFC 8621 §7 "delivered": "unknown").
			status[r] = Status{SMTPReply: rep.String(), Delivered: "unknown", Displayed: "unknown"}
		case rep.Code >= 500 || giveUp:
			status[r] = Status{SMTPReply: rep.String(), Delivered: "no", Displayed: "unknown"}
			failed = append(failed, Failure{Rcpt: r, Reply: rep})
		default:
			status[r] = Queued(rep.String())
			again = append(again, r)
			last[r] = rep.String()
		}
	}
	a.log.Info().Str("job", j.ID).Int("attempt", j.Attempts).Int("relayed", len(external)-len(failed)-len(again)).
		Int("failed", len(failed)).Int("deferred", len(again)).Msg("relay attempt")
	var dsn []byte
	var dsnBlob store.BlobInfo
	var dsnMsg *Parsed
	if len(failed) > 0 && j.From != "" {
		dsn = a.DSN(j.From, j.ID, raw, failed, now)
		infos, err := a.st.Blobs().UploadBatch(ctx, j.Account, []store.BlobInput{{Type: "message/rfc822", Data: dsn}})
		if err != nil {
			return fmt.Errorf("store DSN: %w", err)
		}
		dsnBlob = infos[0]
		if dsnMsg, err = NewParsed(dsn); err != nil {
			return fmt.Errorf("parse DSN: %w", err)
		}
	}
	_, err := a.st.Update(ctx, func(tx store.Tx) error {
		cur, err := loadJob(tx, j.ID)
		if err != nil || cur == nil {
			return err
		}
		if dsn != nil {
			if err := a.host.Deliver(tx, j.Account, dsnBlob, dsn, dsnMsg, ""); err != nil {
				return fmt.Errorf("deliver DSN: %w", err)
			}
		}
		if j.Submission != "" {
			if err := a.host.Report(tx, j.Account, j.Submission, status, true, dsnBlob.ID); err != nil {
				return err
			}
		}
		if len(again) == 0 {
			return finishJob(tx, cur)
		}
		cur.Rcpts, cur.Started, cur.Attempts, cur.Last = again, j.Started, j.Attempts, last
		cur.NotBefore = now.Add(a.relay.backoff(j.Attempts))
		return replaceJob(tx, cur)
	})
	return err
}

// Reply is an SMTP reply.
type Reply struct {
	Code int
	// Text is the enhanced status code and the text, on one line.
	Text string
}

func (r Reply) String() string {
	return strings.TrimSpace(strconv.Itoa(r.Code) + " " + r.Text)
}

// Failure is a recipient the message could not reach.
type Failure struct {
	Rcpt  string
	Reply Reply
}

// enhanced returns the enhanced status code of a reply, or one made from
// its class.
func (r Reply) enhanced() string {
	f := strings.Fields(r.Text)
	if len(f) > 0 && strings.Count(f[0], ".") == 2 && (f[0][0] == '2' || f[0][0] == '4' || f[0][0] == '5') {
		return f[0]
	}
	return fmt.Sprintf("%d.0.0", max(r.Code/100, 4))
}
