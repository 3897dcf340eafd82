package mime

import (
	"strconv"
	"strings"
	"time"
)

// AsMessageIDs returns the MessageIds form of a header value (RFC 8621
// §4.1.2.5): each msg-id without angle brackets and CFWS. Ids written
// without brackets are accepted when the value has no bracketed id at all
// and they contain "@". nil when none parse.
func AsMessageIDs(v string) []string {
	ids := bracketed(v)
	if len(ids) > 0 {
		return ids
	}
	for _, w := range strings.Fields(stripComments(cleanUTF8(unfold(v)))) {
		w = strings.Trim(w, ",")
		if strings.Contains(w, "@") && !strings.ContainsAny(w, "<>") {
			ids = append(ids, w)
		}
	}
	return ids
}

// AsURLs returns the URLs form of a header value (RFC 8621 §4.1.2.7): the
// URLs in angle brackets of an RFC 2369 list header, without the brackets,
// white space or comments. nil when there is none.
func AsURLs(v string) []string {
	return bracketed(v)
}

// bracketed returns the non-empty contents of the "<...>" items of v outside
// comments and quoted strings, with white space removed; nil when none.
func bracketed(v string) []string {
	s := cleanUTF8(unfold(v))
	var out []string
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			i = skipComment(s, i) - 1
		case '"':
			_, n := quotedString(s, i)
			i = n - 1
		case '<':
			j := strings.IndexByte(s[i+1:], '>')
			if j < 0 {
				return out
			}
			id := strings.Join(strings.Fields(s[i+1:i+1+j]), "")
			if id != "" {
				out = append(out, id)
			}
			i += j + 1
		}
	}
	return out
}

// stripComments removes RFC 5322 comments from s, leaving a space in their
// place; quoted strings are kept as they are.
func stripComments(s string) string {
	if strings.IndexByte(s, '(') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			i = skipComment(s, i) - 1
			b.WriteByte(' ')
		case '"':
			_, n := quotedString(s, i)
			b.WriteString(s[i:n])
			i = n - 1
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	// zoneNames holds the obsolete zone names of RFC 5322 §4.3, in hours.
	zoneNames = map[string]int{
		"ut": 0, "utc": 0, "gmt": 0, "z": 0,
		"est": -5, "edt": -4, "cst": -6, "cdt": -5,
		"mst": -7, "mdt": -6, "pst": -8, "pdt": -7,
	}
)

// AsDate returns the Date form of a header value (RFC 8621 §4.1.2.6): the
// RFC 5322 §3.3 date-time, obsolete forms included (two-digit years, zone
// names, military zones read as -0000 per RFC 5322 §4.3), in the zone the
// value gives. A missing zone is taken as UTC. nil when it does not parse.
func AsDate(v string) *time.Time {
	s := strings.TrimSpace(stripComments(cleanUTF8(unfold(v))))
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return &t
	}
	f := strings.Fields(strings.ReplaceAll(s, ",", " "))
	if len(f) > 0 && isAlpha(f[0]) && len(f[0]) >= 3 && indexPrefix(dayNames, f[0]) >= 0 {
		f = f[1:] // day-of-week
	}
	if len(f) < 4 {
		return nil
	}
	var day, month, year int
	if m := indexPrefix(monthNames, f[0]); m >= 0 && isAlpha(f[0]) {
		// "Jan 2 2006 ..." as some mailers write it.
		month = m + 1
		if !isDigits(f[1]) || len(f[1]) > 2 {
			return nil
		}
		day, _ = strconv.Atoi(f[1])
	} else {
		if !isDigits(f[0]) || len(f[0]) > 2 || !isAlpha(f[1]) {
			return nil
		}
		day, _ = strconv.Atoi(f[0])
		month = indexPrefix(monthNames, f[1]) + 1
	}
	if month == 0 || !isDigits(f[2]) || len(f[2]) < 2 || len(f[2]) > 4 {
		return nil
	}
	year, _ = strconv.Atoi(f[2])
	switch len(f[2]) { // RFC 5322 §4.3
	case 2:
		if year < 50 {
			year += 2000
		} else {
			year += 1900
		}
	case 3:
		year += 1900
	}
	hms := strings.Split(f[3], ":")
	if len(hms) < 2 || len(hms) > 3 {
		return nil
	}
	var clock [3]int
	for k, p := range hms {
		if !isDigits(p) || len(p) > 2 {
			return nil
		}
		clock[k], _ = strconv.Atoi(p)
	}
	if clock[0] > 23 || clock[1] > 59 || clock[2] > 60 {
		return nil
	}
	if clock[2] == 60 {
		clock[2] = 59 // leap second; time.Time cannot hold it
	}
	offset := 0
	if len(f) > 4 {
		z := f[4]
		switch {
		case (z[0] == '+' || z[0] == '-') && len(z) == 5 && isDigits(z[1:]):
			hh, _ := strconv.Atoi(z[1:3])
			mm, _ := strconv.Atoi(z[3:5])
			if mm > 59 {
				return nil
			}
			offset = hh*3600 + mm*60
			if z[0] == '-' {
				offset = -offset
			}
		case isAlpha(z):
			offset = zoneNames[strings.ToLower(z)] * 3600 // unknown and military: -0000
		default:
			return nil
		}
	}
	if day < 1 || day > daysIn(time.Month(month), year) {
		return nil
	}
	t := time.Date(year, time.Month(month), day, clock[0], clock[1], clock[2], 0, time.FixedZone("", offset))
	return &t
}

// daysIn returns the number of days in month of year.
func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// indexPrefix returns the index of the name in names that s starts with,
// case insensitively, or -1.
func indexPrefix(names []string, s string) int {
	if len(s) < 3 {
		return -1
	}
	for i, n := range names {
		if strings.EqualFold(s[:3], n) {
			return i
		}
	}
	return -1
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
