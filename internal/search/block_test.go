package search

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func decodeAll(b []byte) ([]Posting, error) {
	var out []Posting
	err := DecodeBlock(b, func(id string, f uint8) bool {
		out = append(out, Posting{id, f})
		return true
	})
	return out, err
}

func TestBlock_RoundTrip(t *testing.T) {
	cases := []struct {
		name string
		in   []Posting
	}{
		{"empty", nil},
		{"one", []Posting{{"a1", 1}}},
		{"sorted by length then bytes", []Posting{{"a10", 32}, {"a9", 1}, {"azz", 3}, {"a", 63}, {"b0", 0}}},
		{"long ids", []Posting{{string(bytes.Repeat([]byte{'x'}, 300)), 4}, {string(bytes.Repeat([]byte{'x'}, 299)) + "y", 5}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := slices.Clone(tc.in)
			slices.SortFunc(want, ComparePostings)
			b := AppendBlock(nil, slices.Clone(tc.in))
			if b[0] != BlockVersion {
				t.Fatalf("first octet %x", b[0])
			}
			got, err := decodeAll(b)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("decode = %v, %v; want %v", got, err, want)
			}
		})
	}
}

func TestBlock_SharedPrefixesAreShort(t *testing.T) {
	var ps []Posting
	for i := range 300 {
		ps = append(ps, Posting{"a1" + string(rune('a'+i/26%26)) + string(rune('a'+i%26)) + "x", 1})
	}
	if b := AppendBlock(nil, ps); len(b) > 300*6 {
		t.Errorf("300 postings of 5-octet ids take %d octets", len(b))
	}
}

func TestBlock_Malformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":              {},
		"one-octet posting":  {3},
		"wrong version":      {0xb2, 0, 1, 'a', 1},
		"shared too long":    {BlockVersion, 2, 1, 'a', 1},
		"rest past the end":  {BlockVersion, 0, 5, 'a', 1},
		"mask missing":       {BlockVersion, 0, 1, 'a'},
		"empty id":           {BlockVersion, 0, 0, 1},
		"truncated varint":   {BlockVersion, 0x80},
		"second bad posting": {BlockVersion, 0, 1, 'a', 1, 3, 1, 'b', 1},
	} {
		if _, err := decodeAll(b); !errors.Is(err, ErrBadBlock) {
			t.Errorf("%s: err %v, want ErrBadBlock", name, err)
		}
	}
}

// FuzzDecodeBlock feeds any value to the decoder: it never panics, and
// what it decodes without error encodes back to the same postings.
func FuzzDecodeBlock(f *testing.F) {
	f.Add(AppendBlock(nil, []Posting{{"a1", 1}, {"a2", 3}, {"a10", 32}}))
	f.Add([]byte{BlockVersion, 0, 1, 'a', 1, 1, 1, 'b', 2})
	f.Add([]byte{BlockVersion, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeAll(b)
		if err != nil {
			return
		}
		again, err := decodeAll(AppendBlock(nil, slices.Clone(got)))
		slices.SortFunc(got, ComparePostings)
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("re-encoded %v: %v, %v", got, again, err)
		}
	})
}
