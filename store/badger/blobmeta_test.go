package badger

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestBlobMeta_RoundTripAndOldJSON(t *testing.T) {
	for _, m := range []blobMeta{
		{},
		{Size: 20480, Refs: 3, Uploads: 1, Type: "message/rfc822"},
		{Size: -1, Refs: -2, Uploads: 1 << 40, Type: "text/plain; charset=utf-8", Base: "ab12", Prefix: []byte("Received: from x\\r\\n\\x00\\xff")},
	} {
		var got blobMeta
		if err := decodeBlobMeta(m.encode(), &got); err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("binary round trip of %+v: %+v, %v", m, got, err)
		}
		// A meta stored as JSON before the binary form reads the same.
		old, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got = blobMeta{}
		if err := decodeBlobMeta(old, &got); err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("JSON %s: %+v, %v", old, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, {0x02}, {blobMetaBinary}, {blobMetaBinary, 0, 0, 0, 5, 'a'}, append(new(blobMeta).encode(), 0)} {
		if err := decodeBlobMeta(bad, new(blobMeta)); err == nil {
			t.Errorf("decodeBlobMeta(%q) accepted", bad)
		}
	}
}

// FuzzDecodeBlobMeta: any value decodes without a panic, and what decodes
// from the binary form encodes back to the same octets.
func FuzzDecodeBlobMeta(f *testing.F) {
	f.Add((&blobMeta{Size: 5, Refs: 1, Type: "a", Base: "b", Prefix: []byte("c")}).encode())
	f.Add([]byte(`{"s":1,"r":2,"u":3,"t":"x","b":"y","p":"eg=="}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		var m blobMeta
		if decodeBlobMeta(v, &m) != nil || len(v) == 0 || v[0] != blobMetaBinary {
			return
		}
		if got := m.encode(); string(got) != string(v) {
			// Varints have one shortest form; a longer one is refused
			// or re-encoded shorter, never read differently.
			var again blobMeta
			if err := decodeBlobMeta(got, &again); err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("%q decoded to %+v, which encodes to %q", v, m, got)
			}
		}
	})
}
