package methods

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jmapd/jmapd/internal/mime"
	"github.com/jmapd/jmapd/jmap"
	"github.com/jmapd/jmapd/store"
)

func registerSnippet(r *jmap.Registry) {
	r.Handle("SearchSnippet/get", CapMail, searchSnippetGet)
	r.Handle("Email/parse", CapMail, emailParse)
}

// searchTerms collects the strings a filter searches the subject and the
// body for; terms under NOT are left out, since they do not match.
func searchTerms(raw json.RawMessage) (subject, body []string) {
	var walk func(v any, negated bool)
	walk = func(v any, negated bool) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if op, isOp := m["operator"].(string); isOp {
			conds, _ := m["conditions"].([]any)
			for _, c := range conds {
				walk(c, negated != (op == "NOT"))
			}
			return
		}
		if negated {
			return
		}
		for k, val := range m {
			s, ok := val.(string)
			if !ok || strings.TrimSpace(s) == "" {
				continue
			}
			// The tokens and phrases of the search match separately
			// (RFC 8621 §4.4.1), so each is marked on its own.
			tokens := searchTokens(s)
			switch k {
			case "text":
				subject = append(subject, tokens...)
				body = append(body, tokens...)
			case "subject":
				subject = append(subject, tokens...)
			case "body":
				body = append(body, tokens...)
			}
		}
	}
	var v any
	if json.Unmarshal(raw, &v) == nil {
		walk(v, false)
	}
	return subject, body
}

// highlight returns text HTML-escaped with every occurrence of the terms
// wrapped in <mark>, and whether any occurred (RFC 8621 §5).
func highlight(text string, terms []string) (string, bool) {
	low := strings.ToLower(text)
	type span struct{ from, to int }
	var spans []span
	for _, t := range terms {
		lt := strings.ToLower(t)
		if lt == "" || len(lt) != len(t) {
			continue
		}
		for i := 0; ; {
			j := strings.Index(low[i:], lt)
			if j < 0 {
				break
			}
			spans = append(spans, span{i + j, i + j + len(lt)})
			i += j + len(lt)
		}
	}
	if len(spans) == 0 {
		return html.EscapeString(text), false
	}
	// Merge overlapping spans in order.
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && spans[j].from < spans[j-1].from; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	var b strings.Builder
	pos := 0
	for _, s := range spans {
		if s.from < pos {
			if s.to > pos {
				b.WriteString(html.EscapeString(text[pos:s.to]))
				pos = s.to
			}
			continue
		}
		b.WriteString(html.EscapeString(text[pos:s.from]))
		b.WriteString("<mark>")
		b.WriteString(html.EscapeString(text[s.from:s.to]))
		b.WriteString("</mark>")
		pos = s.to
	}
	b.WriteString(html.EscapeString(text[pos:]))
	return b.String(), true
}

// fragment returns about 200 octets of text around the first term found.
func fragment(text string, terms []string) (string, bool) {
	text = strings.Join(strings.Fields(text), " ")
	low := strings.ToLower(text)
	at := -1
	for _, t := range terms {
		if i := strings.Index(low, strings.ToLower(t)); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at < 0 {
		return "", false
	}
	start := max(at-60, 0)
	for start > 0 && !utf8.RuneStart(text[start]) {
		start--
	}
	end := min(start+200, len(text))
	for end < len(text) && !utf8.RuneStart(text[end]) {
		end++
	}
	return text[start:end], true
}

// maxPreview is the largest SearchSnippet preview: it "MUST NOT be bigger
// than 255 octets in size" (RFC 8621 §5), after escaping and marking.
const maxPreview = 255

// fitPreview highlights f, shortening f until the result fits maxPreview.
func fitPreview(f string, terms []string) string {
	for {
		s, _ := highlight(f, terms)
		if len(s) <= maxPreview {
			return s
		}
		// Keep the share of f that the escaping and marks leave room for.
		end := min(len(f)-1, len(f)*maxPreview/len(s))
		for end > 0 && !utf8.RuneStart(f[end]) {
			end--
		}
		f = f[:end]
	}
}

type snippetArgs struct {
	AccountID string          `json:"accountId"`
	Filter    json.RawMessage `json:"filter"`
	EmailIDs  []string        `json:"emailIds"`
}

type snippet struct {
	EmailID string  `json:"emailId"`
	Subject *string `json:"subject"`
	Preview *string `json:"preview"`
}

type snippetResponse struct {
	AccountID string    `json:"accountId"`
	List      []snippet `json:"list"`
	NotFound  []string  `json:"notFound"`
}

// searchSnippetGet highlights what a search matched in each email's
// subject and body (RFC 8621 §5.1).
func searchSnippetGet(ctx context.Context, c *jmap.Call) (any, error) {
	var args snippetArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if args.EmailIDs == nil {
		return nil, jmap.InvalidArguments("emailIds is required")
	}
	acct, err := c.Account(ctx, args.AccountID, CapMail)
	if err != nil {
		return nil, err
	}
	if len(args.EmailIDs) > c.Limits().MaxObjectsInGet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
	}
	// The filter must be one Email/query accepts.
	q := &queryContext{ctx: ctx, c: c, acct: acct.ID}
	if _, err := jmap.CompileFilter(args.Filter, q.compileEmailCondition); err != nil {
		return nil, err
	}
	subjTerms, bodyTerms := searchTerms(args.Filter)
	resp := &snippetResponse{AccountID: args.AccountID, List: []snippet{}}
	var records []*emailRecord
	err = c.Store().View(ctx, func(tx store.Tx) error {
		var err error
		records, resp.NotFound, err = loadEmails(tx, c, acct.ID, args.EmailIDs)
		if len(resp.NotFound) == 0 {
			resp.NotFound = nil // RFC 8621 §5.1: null if all were found
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, e := range records {
		sn := snippet{EmailID: e.ID}
		if e.Subject != nil {
			if s, ok := highlight(*e.Subject, subjTerms); ok {
				sn.Subject = &s
			}
		}
		if len(bodyTerms) > 0 {
			if m, err := openMessage(ctx, c.Store(), acct.ID, e.BlobID); err == nil {
				text, htmlParts, _ := m.BodyLists()
				for _, p := range append(text, htmlParts...) {
					t, _ := m.Text(p)
					if p.Type == "text/html" {
						t = mime.HTMLToText(t)
					}
					if f, ok := fragment(t, bodyTerms); ok {
						s := fitPreview(f, bodyTerms)
						sn.Preview = &s
						break
					}
				}
			}
		}
		resp.List = append(resp.List, sn)
	}
	return resp, nil
}

type emailParseArgs struct {
	AccountID           string    `json:"accountId"`
	BlobIDs             []string  `json:"blobIds"`
	Properties          *[]string `json:"properties"`
	BodyProperties      *[]string `json:"bodyProperties"`
	FetchTextBodyValues bool      `json:"fetchTextBodyValues"`
	FetchHTMLBodyValues bool      `json:"fetchHTMLBodyValues"`
	FetchAllBodyValues  bool      `json:"fetchAllBodyValues"`
	MaxBodyValueBytes   int       `json:"maxBodyValueBytes"`
}

type emailParseResponse struct {
	AccountID   string                    `json:"accountId"`
	Parsed      map[string]map[string]any `json:"parsed"`
	NotParsable []string                  `json:"notParsable"`
	NotFound    []string                  `json:"notFound"`
}

var defaultParseProps = []string{"messageId", "inReplyTo", "references", "sender", "from", "to",
	"cc", "bcc", "replyTo", "subject", "sentAt", "hasAttachment", "preview", "bodyValues", "textBody",
	"htmlBody", "attachments"}

// emailParse parses messages that are blobs, without importing them
// (RFC 8621 §4.9): properties an email only has once stored are null.
func emailParse(ctx context.Context, c *jmap.Call) (any, error) {
	var args emailParseArgs
	if err := c.Decode(&args); err != nil {
		return nil, err
	}
	if args.BlobIDs == nil {
		return nil, jmap.InvalidArguments("blobIds is required")
	}
	if args.MaxBodyValueBytes < 0 {
		return nil, jmap.InvalidArguments("maxBodyValueBytes must not be negative")
	}
	acct, err := c.Account(ctx, args.AccountID, CapMail)
	if err != nil {
		return nil, err
	}
	if len(args.BlobIDs) > c.Limits().MaxObjectsInGet {
		return nil, jmap.NewMethodError(jmap.ErrRequestTooLarge, "")
	}
	props := defaultParseProps
	if args.Properties != nil {
		props = *args.Properties
	}
	get := &emailGetArgs{BodyProperties: args.BodyProperties, FetchTextBodyValues: args.FetchTextBodyValues,
		FetchHTMLBodyValues: args.FetchHTMLBodyValues, FetchAllBodyValues: args.FetchAllBodyValues,
		MaxBodyValueBytes: args.MaxBodyValueBytes}
	plain, hprops, bplain, bhprops, err := emailPropertyLists(props, get)
	if err != nil {
		return nil, err
	}
	resp := &emailParseResponse{AccountID: args.AccountID}
	for _, raw := range args.BlobIDs {
		id, ok := c.ResolveID(raw)
		if !ok {
			resp.NotFound = append(resp.NotFound, raw)
			continue
		}
		// RFC 8621 §4.9: parsed maps "blob id to parsed Email", so a
		// "#creationId" is answered under the blob id it stands for.
		var m *mime.Message
		err := c.Store().View(ctx, func(tx store.Tx) error {
			return checkBlob(ctx, tx, acct.ID, store.BlobID(id))
		})
		if err == nil {
			m, err = openMessage(ctx, c.Store(), acct.ID, id)
		}
		if errors.Is(err, store.ErrNotFound) {
			// Either no such blob, or a blob that is not a message.
			if _, body, oerr := openBlobChecked(ctx, c, acct.ID, store.BlobID(id), 0, 0); oerr == nil {
				body.Close()
				resp.NotParsable = append(resp.NotParsable, id)
			} else {
				resp.NotFound = append(resp.NotFound, id)
			}
			continue
		} else if err != nil {
			return nil, err
		}
		e := &emailRecord{BlobID: id}
		recordFromMessage(m, e)
		out, err := renderEmail(m, e, plain, hprops, bplain, bhprops, get)
		if err != nil {
			return nil, err
		}
		// RFC 8621 §4.9: these "will be null if requested"; only what was
		// requested is returned, so id too is left out unless asked for.
		for _, p := range []string{"id", "threadId", "mailboxIds", "keywords", "receivedAt"} {
			if slices.Contains(plain, p) {
				out[p] = nil
			} else {
				delete(out, p)
			}
		}
		if resp.Parsed == nil {
			resp.Parsed = map[string]map[string]any{}
		}
		resp.Parsed[id] = out
	}
	return resp, nil
}
