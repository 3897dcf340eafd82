package mime

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// rfcAddressList is the address-list example of RFC 8621 §4.1.2.3 and
// §4.1.2.4, folded as a raw header value.
const rfcAddressList = " \"  James Smythe\" <james@example.com>, Friends:\r\n" +
	"  jane@example.com, =?UTF-8?Q?John_Sm=C3=AEth?=\r\n  <john@example.com>;"

func strp(s string) *string { return &s }

func TestAsRaw(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"keeps leading space and folding", " Hello\r\n world", " Hello\r\n world"},
		{"drops NUL", " a\x00b", " ab"},
		{"invalid UTF-8 becomes U+FFFD", " caf\xe9 ok", " caf\uFFFD ok"},
		{"run of invalid octets is one U+FFFD", " \xff\xfe\xfd!", " \uFFFD!"},
		{"valid UTF-8 kept", " 日本", " 日本"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AsRaw(tt.in); got != tt.want {
				t.Errorf("AsRaw(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAsText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unfolds and strips leading space", " Hello\r\n world", "Hello world"},
		{"trims", "  padded  ", "padded"},
		{"Q word", " =?UTF-8?Q?John_Sm=C3=AEth?=", "John Smîth"},
		{"B word", " =?utf-8?B?w6l0w6k=?=", "été"},
		{"B word without padding", " =?utf-8?b?w6l0w6k?=", "été"},
		{"adjacent words joined (RFC 2047 §8)", " (=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)"},
		{"adjacent words drop the space between", " =?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab"},
		{"folded adjacent words", " =?ISO-8859-1?Q?a?=\r\n   =?ISO-8859-1?Q?b?=", "ab"},
		{"space between word and text kept", " =?ISO-8859-1?Q?a?= b", "a b"},
		{"encoded space kept", " =?ISO-8859-1?Q?a_?= =?ISO-8859-1?Q?_b?=", "a  b"},
		{"character split across words", " =?utf-8?B?5pel?= =?utf-8?B?5pys?= =?utf-8?B?6Kqe?=", "日本語"},
		{"multibyte split mid-character", " =?utf-8?Q?=E6=97?= =?utf-8?Q?=A5?=", "日"},
		{"words back to back", " =?utf-8?Q?foo?==?utf-8?Q?bar?=", "foobar"},
		{"latin1 word", " =?iso-8859-1?q?caf=E9?=", "café"},
		{"language suffix (RFC 2231 §5)", " =?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"},
		{"word inside text is not decoded", " abc=?utf-8?q?x?=def", "abc=?utf-8?q?x?=def"},
		{"word glued to punctuation is not decoded", " =?utf-8?q?x?=,", "=?utf-8?q?x?=,"},
		{"unknown charset left as is", " =?x-unknown?q?abc?=", "=?x-unknown?q?abc?="},
		{"bad base64 left as is", " =?utf-8?b?!!!?=", "=?utf-8?b?!!!?="},
		{"unknown encoding left as is", " =?utf-8?x?abc?=", "=?utf-8?x?abc?="},
		{"encoded controls dropped", " =?utf-8?q?a=00b=0D=0Ac?=", "abc"},
		{"NFC", " e\u0301", "\u00e9"},
		{"raw 8-bit replaced", " caf\xe9", "caf\uFFFD"},
		{"empty", "", ""},
		{"mixed charsets", " =?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=", "éé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AsText(tt.in); got != tt.want {
				t.Errorf("AsText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAsAddresses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Address
	}{
		{"RFC 8621 §4.1.2.3 example", rfcAddressList, []Address{
			{Name: strp("James Smythe"), Email: "james@example.com"},
			{Email: "jane@example.com"},
			{Name: strp("John Smîth"), Email: "john@example.com"},
		}},
		{"bare addr-spec", " joe@example.com", []Address{{Email: "joe@example.com"}}},
		{"comment after addr-spec is the name", " joe@example.com (Joe Bloggs)", []Address{{Name: strp("Joe Bloggs"), Email: "joe@example.com"}}},
		{"comment after angle-addr is the name", " <joe@example.com> (Joe)", []Address{{Name: strp("Joe"), Email: "joe@example.com"}}},
		{"display name wins over comment", " Joe <joe@example.com> (x)", []Address{{Name: strp("Joe"), Email: "joe@example.com"}}},
		{"quoted-pair in name", ` "Joe \"JB\" Bloggs" <joe@example.com>`, []Address{{Name: strp(`Joe "JB" Bloggs`), Email: "joe@example.com"}}},
		{"comma in quoted name", ` "Bloggs, Joe" <joe@example.com>, a@b.c`, []Address{{Name: strp("Bloggs, Joe"), Email: "joe@example.com"}, {Email: "a@b.c"}}},
		{"dotted phrase", " John Q. Public <jqp@example.com>", []Address{{Name: strp("John Q. Public"), Email: "jqp@example.com"}}},
		{"encoded word in quoted name (common)", ` "=?utf-8?B?w6l0w6k=?=" <e@example.com>`, []Address{{Name: strp("été"), Email: "e@example.com"}}},
		{"route removed", " <@relay.example:joe@example.com>", []Address{{Email: "joe@example.com"}}},
		{"empty group", " undisclosed-recipients:;", []Address{}},
		{"empty value", "", []Address{}},
		{"missing angle close", " Joe <joe@example.com", []Address{{Name: strp("Joe"), Email: "joe@example.com"}}},
		{"name without angle brackets", " Joe Bloggs joe@example.com", []Address{{Name: strp("Joe Bloggs"), Email: "joe@example.com"}}},
		{"empty items skipped", " a@b.c,, ,d@e.f", []Address{{Email: "a@b.c"}, {Email: "d@e.f"}}},
		{"no @ kept best-effort", " postmaster", []Address{{Email: "postmaster"}}},
		{"quoted local part", ` "john doe"@example.com`, []Address{{Email: `"john doe"@example.com`}}},
		{"white space around @ (obsolete syntax)", " joe @ example.com", []Address{{Email: "joe@example.com"}}},
		{"domain literal", " joe@[192.0.2.1]", []Address{{Email: "joe@[192.0.2.1]"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AsAddresses(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AsAddresses(%q) = %s, want %s", tt.in, jsonOf(got), jsonOf(tt.want))
			}
		})
	}
}

func TestAsGroupedAddresses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []AddressGroup
	}{
		{"RFC 8621 §4.1.2.4 example", rfcAddressList, []AddressGroup{
			{Addresses: []Address{{Name: strp("James Smythe"), Email: "james@example.com"}}},
			{Name: strp("Friends"), Addresses: []Address{
				{Email: "jane@example.com"},
				{Name: strp("John Smîth"), Email: "john@example.com"},
			}},
		}},
		{"empty group keeps its name", " undisclosed-recipients:;", []AddressGroup{{Name: strp("undisclosed-recipients"), Addresses: []Address{}}}},
		{"mailboxes after a group", " G: a@b.c; d@e.f, g@h.i", []AddressGroup{
			{Name: strp("G"), Addresses: []Address{{Email: "a@b.c"}}},
			{Addresses: []Address{{Email: "d@e.f"}, {Email: "g@h.i"}}},
		}},
		{"unterminated group", " G: a@b.c", []AddressGroup{{Name: strp("G"), Addresses: []Address{{Email: "a@b.c"}}}}},
		{"empty", " ", []AddressGroup{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AsGroupedAddresses(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AsGroupedAddresses(%q) = %s, want %s", tt.in, jsonOf(got), jsonOf(tt.want))
			}
		})
	}
}

func TestAddressJSON(t *testing.T) {
	// RFC 8621 §4.1.2.3: name is null when absent.
	got := jsonOf(AsAddresses(" jane@example.com"))
	if want := `[{"name":null,"email":"jane@example.com"}]`; got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
}

func TestAsMessageIDs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"one id", " <1234@local.machine.example>", []string{"1234@local.machine.example"}},
		{"several folded", " <a@x>\r\n <b@y>\r\n\t<c@z>", []string{"a@x", "b@y", "c@z"}},
		{"comments removed", " (first) <a@x> (the (nested) one)", []string{"a@x"}},
		{"white space inside removed", " < a@x >", []string{"a@x"}},
		{"without brackets", " a@x", []string{"a@x"}},
		{"garbage", " not an id", nil},
		{"empty", "", nil},
		{"bracket in comment ignored", " (<no@x>) <yes@x>", []string{"yes@x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AsMessageIDs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AsMessageIDs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAsURLs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"RFC 8621 §4.2.1 List-Post", " <mailto:partytime@lists.example.com>", []string{"mailto:partytime@lists.example.com"}},
		{"RFC 2369 list with comments", " <mailto:list@host.com?subject=help> (List Instructions),\r\n <http://www.host.com/list/>", []string{"mailto:list@host.com?subject=help", "http://www.host.com/list/"}},
		{"folded URL", " <http://www.host.com/list/\r\n archive/>", []string{"http://www.host.com/list/archive/"}},
		{"no posting", " NO (posting not allowed)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AsURLs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AsURLs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAsDate(t *testing.T) {
	zone := func(h, m int) *time.Location { return time.FixedZone("", h*3600+m*60) }
	tests := []struct {
		name string
		in   string
		want time.Time // zero: nil expected
	}{
		{"RFC 5322 appendix A.1.1", " Fri, 21 Nov 1997 09:55:06 -0600", time.Date(1997, 11, 21, 9, 55, 6, 0, zone(-6, 0))},
		{"no day of week", " 21 Nov 1997 09:55:06 +0000", time.Date(1997, 11, 21, 9, 55, 6, 0, time.UTC)},
		{"no seconds", " Tue, 1 Jul 2003 10:52 +0530", time.Date(2003, 7, 1, 10, 52, 0, 0, zone(5, 30))},
		{"obsolete zone name", " Thu, 13 Feb 1969 23:32:54 EST", time.Date(1969, 2, 13, 23, 32, 54, 0, zone(-5, 0))},
		{"two-digit year", " 1 Jan 03 00:00:00 GMT", time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"two-digit year before 1950", " 1 Jan 99 00:00:00 GMT", time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"comment and folding", " Fri, 21 Nov 1997\r\n 09:55:06 -0600 (CST)", time.Date(1997, 11, 21, 9, 55, 6, 0, zone(-6, 0))},
		{"military zone is -0000", " 21 Nov 1997 09:55:06 Q", time.Date(1997, 11, 21, 9, 55, 6, 0, time.UTC)},
		{"missing zone", " 21 Nov 1997 09:55:06", time.Date(1997, 11, 21, 9, 55, 6, 0, time.UTC)},
		{"leap second", " 31 Dec 2016 23:59:60 +0000", time.Date(2016, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"RFC 3339", " 2014-10-30T14:12:00+08:00", time.Date(2014, 10, 30, 14, 12, 0, 0, zone(8, 0))},
		{"bad day", " 31 Feb 2020 10:00:00 +0000", time.Time{}},
		{"bad hour", " 1 Feb 2020 25:00:00 +0000", time.Time{}},
		{"bad zone", " 1 Feb 2020 10:00:00 +99999", time.Time{}},
		{"garbage", " yesterday", time.Time{}},
		{"empty", "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AsDate(tt.in)
			switch {
			case tt.want.IsZero() && got != nil:
				t.Errorf("AsDate(%q) = %v, want nil", tt.in, got)
			case !tt.want.IsZero() && got == nil:
				t.Errorf("AsDate(%q) = nil, want %v", tt.in, tt.want)
			case got != nil && (!got.Equal(tt.want) || got.Format(time.RFC3339) != tt.want.Format(time.RFC3339)):
				t.Errorf("AsDate(%q) = %v, want %v", tt.in, got.Format(time.RFC3339), tt.want.Format(time.RFC3339))
			}
		})
	}
}

func TestValuesAndLast(t *testing.T) {
	hs := []Header{{"Received", " a"}, {"Subject", " s"}, {"received", " b"}}
	if got := Values(hs, "RECEIVED"); !reflect.DeepEqual(got, []string{" a", " b"}) {
		t.Errorf("Values = %q", got)
	}
	if got := Values(hs, "To"); got != nil {
		t.Errorf("Values(To) = %q, want nil", got)
	}
	// RFC 8621 §4.1.3: without :all the last instance is used.
	if got, ok := Last(hs, "received"); !ok || got != " b" {
		t.Errorf("Last = %q, %v", got, ok)
	}
	if _, ok := Last(hs, "To"); ok {
		t.Error("Last(To) found")
	}
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
