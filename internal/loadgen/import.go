package loadgen

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/mail"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ImportReport holds the figures of the import phase.
type ImportReport struct {
	// Method is "Blob/upload" (RFC 9404) or "upload" (RFC 8620 §6.1).
	Method       string              `json:"method"`
	Importers    int                 `json:"importers"`
	Messages     int64               `json:"messages"`
	Bytes        int64               `json:"bytes"`
	Failed       int64               `json:"failed"`
	Seconds      float64             `json:"seconds"`
	MessagesPerS float64             `json:"messagesPerSec"`
	MBPerS       float64             `json:"mbPerSec"`
	Requests     map[string]*OpStats `json:"requests"`
	ErrorsByType map[string]int      `json:"errorsByType"`
}

// importItem is one message bound for one account.
type importItem struct {
	acct *account
	raw  []byte
	seq  int
}

// Importer imports a corpus with parallel workers.
type Importer struct {
	Accounts  []*account
	Clients   []*Client // one per account, sharing nothing
	Workers   int
	Seed      uint64
	Notices   *Notices
	Rec       *Recorder
	Progress  *Progress
	Total     int // expected messages, 0 when unknown
	imported  atomic.Int64
	bytes     atomic.Int64
	failed    atomic.Int64
	useBlob   bool
	maxReq    int64
	maxBatch  int
	errorsMu  sync.Mutex
	errByType map[string]int
}

// Run imports every message of src, spreading them over the accounts in
// turn, and returns the figures. It stops early when ctx ends.
func (im *Importer) Run(ctx context.Context, src Source) (*ImportReport, error) {
	im.errByType = map[string]int{}
	s := im.Accounts[0].session
	lim := s.Core()
	im.useBlob = s.Has(CapBlob)
	method := "upload"
	if im.useBlob {
		method = "Blob/upload"
	} else {
		im.Notices.Add("server lacks %s: importing through the upload URL, one message per upload", CapBlob)
		// Uploads are one at a time; Email/import still takes a batch.
	}
	// A batch's base64 must fit the request limit with room to spare.
	im.maxReq = lim.MaxSizeRequest * 6 / 10
	im.maxBatch = min(lim.MaxObjectsInSet, 50)
	if im.Workers < 1 {
		im.Workers = 1
	}
	batches := make(chan []importItem, im.Workers)
	var readErr error
	go func() {
		defer close(batches)
		readErr = im.produce(ctx, src, batches)
	}()
	start := time.Now()
	if im.Progress != nil {
		stop := im.Progress.Start(func() string {
			el := time.Since(start).Seconds()
			n := im.imported.Load()
			total := ""
			if im.Total > 0 {
				total = fmt.Sprintf("/%d (%.0f%%)", im.Total, 100*float64(n)/float64(im.Total))
			}
			return fmt.Sprintf("import %d%s  %.0f msg/s  %.2f MB/s  failed %d", n, total,
				float64(n)/el, float64(im.bytes.Load())/1e6/el, im.failed.Load())
		})
		defer stop()
	}
	var wg sync.WaitGroup
	for w := range im.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker has its own connections, like separate clients.
			clients := map[*account]*Client{}
			defer func() {
				for _, c := range clients {
					c.Close()
				}
			}()
			for b := range batches {
				if ctx.Err() != nil {
					continue
				}
				a := b[0].acct
				c := clients[a]
				if c == nil {
					base := im.Clients[indexOf(im.Accounts, a)]
					c = NewClient(base.SessionURL, base.User, base.Password, base.HTTP.Timeout)
					c.Session = base.Session
					clients[a] = c
				}
				im.batch(ctx, c, b, w)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	r := &ImportReport{Method: method, Importers: im.Workers, Messages: im.imported.Load(), Bytes: im.bytes.Load(),
		Failed: im.failed.Load(), Seconds: el.Seconds(), Requests: im.Rec.Stats(el), ErrorsByType: im.errByType}
	if el > 0 {
		r.MessagesPerS = float64(r.Messages) / el.Seconds()
		r.MBPerS = float64(r.Bytes) / 1e6 / el.Seconds()
	}
	if readErr != nil && !errors.Is(readErr, context.Canceled) {
		return r, fmt.Errorf("read corpus: %w", readErr)
	}
	return r, nil
}

func indexOf(list []*account, a *account) int {
	for i, x := range list {
		if x == a {
			return i
		}
	}
	return 0
}

// produce reads the source and groups messages into batches per account.
func (im *Importer) produce(ctx context.Context, src Source, out chan<- []importItem) error {
	pending := make([][]importItem, len(im.Accounts))
	size := make([]int64, len(im.Accounts))
	flush := func(i int) error {
		if len(pending[i]) == 0 {
			return nil
		}
		select {
		case out <- pending[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		pending[i], size[i] = nil, 0
		return nil
	}
	for seq := 0; ; seq++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		raw, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		i := seq % len(im.Accounts)
		enc := int64(base64.StdEncoding.EncodedLen(len(raw)))
		if len(pending[i]) > 0 && (size[i]+enc > im.maxReq || len(pending[i]) >= im.maxBatch) {
			if err := flush(i); err != nil {
				return err
			}
		}
		pending[i] = append(pending[i], importItem{acct: im.Accounts[i], raw: raw, seq: seq})
		size[i] += enc
	}
	for i := range pending {
		if err := flush(i); err != nil {
			return err
		}
	}
	return nil
}

func (im *Importer) fail(ctx context.Context, n int, err error) {
	if ctx.Err() != nil {
		return // cut short by an interrupt, not a failure of the server
	}
	im.failed.Add(int64(n))
	im.errorsMu.Lock()
	im.errByType[ErrorKey(err)] += n
	im.errorsMu.Unlock()
}

// batch uploads the messages of b and imports them with one Email/import.
func (im *Importer) batch(ctx context.Context, c *Client, b []importItem, worker int) {
	a := b[0].acct
	blobIDs := make([]string, len(b))
	if im.useBlob {
		create := map[string]any{}
		for i, it := range b {
			create["b"+strconv.Itoa(i)] = map[string]any{"type": "message/rfc822",
				"data": []any{map[string]string{"data:asBase64": base64.StdEncoding.EncodeToString(it.raw)}}}
		}
		t := time.Now()
		res, err := c.API(ctx, []string{CapCore, CapBlob}, Call{"Blob/upload", map[string]any{"accountId": a.id, "create": create}, "0"})
		if err != nil {
			if ctx.Err() == nil {
				im.Rec.Fail("Blob/upload", err)
			}
			im.fail(ctx, len(b), err)
			return
		}
		im.Rec.Add("Blob/upload", time.Since(t))
		var r struct {
			Created    map[string]struct{ ID string } `json:"created"`
			NotCreated map[string]SetError            `json:"notCreated"`
		}
		if err := json.Unmarshal(res["0"], &r); err != nil {
			im.fail(ctx, len(b), &Error{Kind: "decode", Type: "Blob/upload"})
			return
		}
		for i := range b {
			key := "b" + strconv.Itoa(i)
			blobIDs[i] = r.Created[key].ID
			if e, ok := r.NotCreated[key]; ok {
				im.fail(ctx, 1, &Error{Kind: "set", Type: e.Type})
			} else if blobIDs[i] == "" {
				im.fail(ctx, 1, &Error{Kind: "missing", Type: "blobId"})
			}
		}
	} else {
		for i, it := range b {
			t := time.Now()
			id, err := c.Upload(ctx, a.id, "message/rfc822", it.raw)
			if err != nil {
				if ctx.Err() == nil {
					im.Rec.Fail("upload", err)
				}
				im.fail(ctx, 1, err)
				continue
			}
			im.Rec.Add("upload", time.Since(t))
			blobIDs[i] = id
		}
	}
	emails := map[string]any{}
	for i, it := range b {
		if blobIDs[i] == "" {
			continue
		}
		emails["e"+strconv.Itoa(i)] = im.importArgs(a, it, blobIDs[i])
	}
	if len(emails) == 0 {
		return
	}
	t := time.Now()
	res, err := c.API(ctx, mailUsing, Call{"Email/import", map[string]any{"accountId": a.id, "emails": emails}, "0"})
	if err != nil {
		if ctx.Err() == nil {
			im.Rec.Fail("Email/import", err)
		}
		im.fail(ctx, len(emails), err)
		return
	}
	im.Rec.Add("Email/import", time.Since(t))
	var r struct {
		Created    map[string]json.RawMessage `json:"created"`
		NotCreated map[string]SetError        `json:"notCreated"`
	}
	if err := json.Unmarshal(res["0"], &r); err != nil {
		im.fail(ctx, len(emails), &Error{Kind: "decode", Type: "Email/import"})
		return
	}
	for i, it := range b {
		key := "e" + strconv.Itoa(i)
		if _, ok := r.Created[key]; ok {
			im.imported.Add(1)
			im.bytes.Add(int64(len(it.raw)))
		} else if e, ok := r.NotCreated[key]; ok {
			im.fail(ctx, 1, &Error{Kind: "set", Type: e.Type})
		} else if _, ok := emails[key]; ok {
			im.fail(ctx, 1, &Error{Kind: "missing", Type: "Email/import created"})
		}
	}
}

// importArgs chooses a mailbox and keywords for a message: most in the
// Inbox and read, some archived or sent, a few flagged. The choice depends
// only on the seed and the message's position.
func (im *Importer) importArgs(a *account, it importItem, blobID string) map[string]any {
	rng := rand.New(rand.NewPCG(im.Seed, uint64(it.seq)))
	box := a.inbox
	kw := map[string]bool{}
	switch r := rng.IntN(100); {
	case r < 20 && a.archive != "":
		box = a.archive
		kw["$seen"] = true
	case r < 30 && a.sent != "":
		box = a.sent
		kw["$seen"] = true
	default:
		if rng.IntN(100) < 75 {
			kw["$seen"] = true
		}
	}
	if rng.IntN(100) < 5 {
		kw["$flagged"] = true
	}
	args := map[string]any{"blobId": blobID, "mailboxIds": map[string]bool{box: true}, "keywords": kw}
	if d := messageDate(it.raw); !d.IsZero() {
		args["receivedAt"] = d.UTC().Format(time.RFC3339)
	}
	return args
}

// messageDate reads the Date header, or returns the zero time.
func messageDate(raw []byte) time.Time {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	m, err := mail.ReadMessage(bytes.NewReader(append(raw[:end:end], "\r\n\r\n"...)))
	if err != nil {
		return time.Time{}
	}
	d, err := m.Header.Date()
	if err != nil {
		return time.Time{}
	}
	return d
}
