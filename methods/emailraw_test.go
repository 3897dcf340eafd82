package methods

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jmapd/jmapd/internal/mime"
)

// rawAndDecoded stores e as marshalEmail does and reads it back both ways.
func rawAndDecoded(t *testing.T, e *emailRecord) (rawEmail, emailRecord) {
	t.Helper()
	b, err := marshalEmail(e)
	if err != nil {
		t.Fatal(err)
	}
	var r rawEmail
	if !scanRawEmail(b, &r) {
		t.Fatalf("scanRawEmail refused %s", b)
	}
	var dec emailRecord
	if err := decodeEmailRecord(b, &dec); err != nil {
		t.Fatal(err)
	}
	return r, dec
}

func TestNumRecordFields(t *testing.T) {
	if len(recordFields) != numRecordFields {
		t.Fatalf("numRecordFields is %d, recordFields has %d", numRecordFields, len(recordFields))
	}
}

// The owner's answer copied from a record is the answer written from the
// decoded record, byte for byte, for every subset of properties.
func TestAppendRawEmailProps_SameAsDecoded(t *testing.T) {
	empty := &emailRecord{ID: "y"}
	for _, e := range []*emailRecord{sampleRecord(), empty} {
		r, dec := rawAndDecoded(t, e)
		for mask := range uint32(1) << len(storedEmailProps) {
			if mask%97 != 0 && mask != 1<<len(storedEmailProps)-1 {
				continue // a spread of subsets, and all of them
			}
			var props []string
			for i, p := range storedEmailProps {
				if mask&(1<<i) != 0 {
					props = append(props, p)
				}
			}
			sorted := sortedProps(props)
			if got, want := appendRawEmailProps(nil, &r, sorted), appendEmailProps(nil, &dec, sorted); !bytes.Equal(got, want) {
				t.Fatalf("raw     %s\ndecoded %s", got, want)
			}
		}
	}
}

func TestScanRawEmail_RefusesWhatIsNoRecord(t *testing.T) {
	full, _ := marshalEmail(sampleRecord())
	for _, in := range []string{
		``, `{}`, `null`, `[]`, `{"id":"a"}`, // members missing
		string(full[:len(full)-1]), // cut short
		string(full) + " ",         // not compact
		`{"id":"a","id":"b"}`,      // repeated
		`{"unknown":1}`, `{"i\u0064":"a"}`, `{"id":tru}`, `{"id":"\x"}`, `{"id":01}`,
	} {
		var r rawEmail
		if scanRawEmail([]byte(in), &r) {
			t.Errorf("scanRawEmail accepted %q", in)
		}
	}
}

// FuzzScanRawEmail: whatever scanRawEmail accepts, the answer copied from
// it is valid JSON with every property asked for.
func FuzzScanRawEmail(f *testing.F) {
	b, _ := marshalEmail(sampleRecord())
	f.Add(b)
	b, _ = marshalEmail(&emailRecord{ID: "x"})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r rawEmail
		if !scanRawEmail(b, &r) {
			return
		}
		out := appendRawEmailProps(nil, &r, sortedProps(storedEmailProps))
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%q gave invalid JSON %q: %v", b, out, err)
		}
		if len(m) != len(storedEmailProps) {
			t.Fatalf("%q gave %d properties", b, len(m))
		}
	})
}

// FuzzRawEmailProps: for any record marshalEmail writes, the copied answer
// says what the one written from the decoded record says. The bytes may
// differ in escapes only: json.Marshal wrote the record with invalid UTF-8
// as \ufffd, appendEmailProps writes the decoded U+FFFD as it is.
func FuzzRawEmailProps(f *testing.F) {
	f.Add("Zoë \"Z\" <Z&Co>", "Re: 5 < 6", "preview \u2028 & <b>", "$seen", "a2", uint32(0xfffff), true)
	f.Add("\xff", "\x00\x1f", "\ud7ff", "k\"", "m<", uint32(0x5555), false)
	f.Fuzz(func(t *testing.T, name, subject, preview, keyword, mailbox string, mask uint32, nulls bool) {
		e := &emailRecord{ID: "a" + mailbox, BlobID: "G" + keyword, ThreadID: "t", Size: int64(mask), ReceivedAt: subject,
			MailboxIDs: map[string]bool{mailbox: true, "z": false}, Keywords: map[string]bool{keyword: true},
			MessageID: []string{name, subject}, From: []mime.Address{{Name: &name, Email: keyword}, {Email: preview}},
			Subject: &subject, SentAt: &preview, Preview: preview, Left: map[string]bool{name: true}}
		if nulls {
			e.MailboxIDs, e.Keywords, e.MessageID, e.From, e.Subject, e.SentAt, e.Left = nil, nil, nil, nil, nil, nil, nil
		}
		r, dec := rawAndDecoded(t, e)
		var props []string
		for i, p := range storedEmailProps {
			if mask&(1<<i) != 0 {
				props = append(props, p)
			}
		}
		sorted := sortedProps(props)
		got, want := appendRawEmailProps(nil, &r, sorted), appendEmailProps(nil, &dec, sorted)
		var gv, wv any
		if err := json.Unmarshal(got, &gv); err != nil {
			t.Fatalf("raw answer %s: %v", got, err)
		}
		if err := json.Unmarshal(want, &wv); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gv, wv) {
			t.Fatalf("raw     %s\ndecoded %s", got, want)
		}
	})
}

func BenchmarkScanRawEmail(b *testing.B) {
	rec, _ := marshalEmail(sampleRecord())
	b.SetBytes(int64(len(rec)))
	var r rawEmail
	for b.Loop() {
		if !scanRawEmail(rec, &r) {
			b.Fatal("refused")
		}
	}
}
