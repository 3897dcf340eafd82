package methods

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jmapd/jmapd/internal/mime"
)

// sampleRecord is an email record as import stores it, with the odd
// characters a record meets: escapes, non-ASCII, HTML-special ones.
func sampleRecord() *emailRecord {
	name, subj, sent := "Zoë \"Z\" <Z&Co>", "Re: 5 < 6 & \u2028 ok\ttab", "2026-01-01T00:05:00+01:00"
	return &emailRecord{ID: "a9", BlobID: "G2533", ThreadID: "aa", MailboxIDs: map[string]bool{"a2": true, "a10": true},
		Keywords: map[string]bool{"$seen": true, "$flagged": true}, Size: 604, ReceivedAt: "2026-01-01T00:00:00Z",
		MessageID: []string{"b5@example.test"}, InReplyTo: []string{"b4@example.test"}, References: []string{},
		From: []mime.Address{{Name: &name, Email: "s5@example.test"}}, To: []mime.Address{{Email: "alice@example.test"}},
		Subject: &subj, SentAt: &sent, HasAttachment: true, Preview: "travel <b>deadline</b> & notes\u00a0— 😀",
		Left: map[string]bool{"a3": true}}
}

// The record as marshalEmail writes it is read by the scanner itself, not
// by the fallback, and to the same value.
func TestDecodeEmailRecord_FastPathReadsMarshalOutput(t *testing.T) {
	for _, e := range []*emailRecord{sampleRecord(), {ID: "x"}, {ID: "y", MailboxIDs: map[string]bool{}, Keywords: map[string]bool{}}} {
		b, err := marshalEmail(e)
		if err != nil {
			t.Fatal(err)
		}
		var fast emailRecord
		if !(&recordScanner{b: b}).record(&fast) {
			t.Fatalf("the scanner refused %s", b)
		}
		var want emailRecord
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("scanner read %+v, json.Unmarshal %+v", fast, want)
		}
	}
}

// decodeEmailRecord answers what json.Unmarshal answers, for any input:
// the same record, or an error where it errs.
func FuzzDecodeEmailRecord(f *testing.F) {
	b, _ := marshalEmail(sampleRecord())
	f.Add(b)
	for _, s := range []string{
		`{"id":"a1","mailboxIds":null,"keywords":{},"size":0,"subject":null,"from":null}`,
		` { "id" : "a\u0031" , "size" : -0 , "to" : [ {"name":null,"email":null} ] } `,
		`{"ID":"case"}`, `{"id":"dup","id":"x"}`, `{"size":1e2}`, `{"size":01}`, `{"size":99999999999999999999}`,
		`{"id":"\ud83d\ude00"}`, `{"id":"\ud83d"}`, "{\"id\":\"\xff\"}", `{"preview":"a\/b\\c\n"}`, `null`, `{}x`,
		`{"mailboxIds":{"a":true,"a":false}}`, `{"keywords":{"a":null}}`, `{"messageId":[null]}`, `{"from":[null]}`,
		`{"from":[{"name":"n","email":"e","x":1}]}`, `{"hasAttachment":null,"receivedAt":null,"left":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want emailRecord
		gotErr := decodeEmailRecord(b, &got)
		wantErr := json.Unmarshal(b, &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: decodeEmailRecord error %v, json.Unmarshal error %v", b, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decodeEmailRecord %+v, json.Unmarshal %+v", b, got, want)
		}
	})
}

// appendEmailProps writes the bytes json.Marshal writes for what
// renderEmail returns, for any record and any stored properties.
func FuzzAppendEmailProps(f *testing.F) {
	f.Add("Zoë \"Z\" <Z&Co>", "Re: 5 < 6", "preview \u2028 & <b>", "$seen", "a2", uint32(0xfffff), true, true)
	f.Add("", "", "", "", "", uint32(0), false, false)
	f.Add("\xff", "\x00\x1f", "\ud7ff", "k\"", "m<", uint32(0x5555), true, false)
	f.Fuzz(func(t *testing.T, name, subject, preview, keyword, mailbox string, mask uint32, nulls, attach bool) {
		e := &emailRecord{ID: "a" + mailbox, BlobID: "G" + keyword, ThreadID: "t", Size: int64(mask), ReceivedAt: subject,
			MailboxIDs: map[string]bool{mailbox: true, "z": false}, Keywords: map[string]bool{keyword: true},
			MessageID: []string{name, subject}, From: []mime.Address{{Name: &name, Email: keyword}, {Email: preview}},
			Subject: &subject, SentAt: &preview, HasAttachment: attach, Preview: preview}
		if nulls {
			e.MailboxIDs, e.Keywords, e.MessageID, e.From, e.Subject, e.SentAt = nil, nil, nil, nil, nil, nil
			e.To = []mime.Address{}
		}
		var props []string
		for i, p := range storedEmailProps {
			if mask&(1<<i) != 0 {
				props = append(props, p, p) // repeats are one key
			}
		}
		m, err := renderEmail(nil, e, props, nil, nil, nil, &emailGetArgs{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendEmailProps(nil, e, sortedProps(props)); !bytes.Equal(got, want) {
			t.Fatalf("appendEmailProps = %s\njson.Marshal     = %s", got, want)
		}
	})
}

// FuzzAddCounts: the counts rewritten where they stand say what decoding
// the record, adding and encoding it again says.
func FuzzAddCounts(f *testing.F) {
	f.Add([]byte(`{"id":"a1","name":"Inbox","totalEmails":3,"unreadEmails":1,"totalThreads":2,"unreadThreads":0,"role":"inbox"}`), 1, -1, 0, 5)
	f.Add([]byte(`{"totalEmails":0,"unreadEmails":0,"totalThreads":0,"unreadThreads":0}`), -3, 2, 1, -1)
	f.Add([]byte(`{"totalEmails":1.5,"unreadEmails":0,"totalThreads":0,"unreadThreads":0,"name":"x\"}"}`), 1, 1, 1, 1)
	f.Fuzz(func(t *testing.T, b []byte, total, unread, threads, unreadThreads int) {
		if !json.Valid(b) {
			return
		}
		deltas := map[string]int{"totalEmails": total, "unreadEmails": unread, "totalThreads": threads, "unreadThreads": unreadThreads}
		fast, ok := addCountsInPlace(b, deltas)
		if !ok {
			return
		}
		m := map[string]json.RawMessage{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%q: in place, but no object: %v", b, err)
		}
		var got, want map[string]any
		if err := json.Unmarshal(fast, &got); err != nil {
			t.Fatalf("%q gave invalid %q: %v", b, fast, err)
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		for k, d := range deltas {
			want[k] = max(want[k].(float64)+float64(d), 0)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: in place %v, want %v", b, got, want)
		}
	})
}
