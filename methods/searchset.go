package methods

import (
	"math/bits"
	"strconv"
)

// candSet is a set of email ids for the full-text index's candidate sets,
// which for a common word hold a third of an account. Ids of the form the
// store makes ("a" and a base-36 number without leading zeros) are bits,
// 256 consecutive numbers to a group; any other id is kept by name.
type candSet struct {
	groups map[uint64]*[4]uint64
	names  map[string]bool
}

func newCandSet() *candSet {
	return &candSet{groups: map[uint64]*[4]uint64{}}
}

// idNumber returns the number of an id of the store's form.
func idNumber[T string | []byte](id T) (uint64, bool) {
	if len(id) < 2 || len(id) > 13 || id[0] != 'a' || id[1] == '0' {
		return 0, false
	}
	var n uint64
	for i := 1; i < len(id); i++ {
		c := id[i]
		switch {
		case '0' <= c && c <= '9':
			n = n*36 + uint64(c-'0')
		case 'a' <= c && c <= 'z':
			n = n*36 + uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

func (s *candSet) addNumber(n uint64) {
	g := s.groups[n>>8]
	if g == nil {
		g = &[4]uint64{}
		s.groups[n>>8] = g
	}
	g[n>>6&3] |= 1 << (n & 63)
}

// add puts id in the set.
func (s *candSet) add(id string) {
	if n, ok := idNumber(id); ok {
		s.addNumber(n)
		return
	}
	if s.names == nil {
		s.names = map[string]bool{}
	}
	s.names[id] = true
}

// addBytes puts id in the set; it copies id only when kept by name.
func (s *candSet) addBytes(id []byte) {
	if n, ok := idNumber(id); ok {
		s.addNumber(n)
		return
	}
	if s.names == nil {
		s.names = map[string]bool{}
	}
	s.names[string(id)] = true
}

// has reports whether id is in the set.
func (s *candSet) has(id string) bool {
	if s == nil {
		return false
	}
	if n, ok := idNumber(id); ok {
		g := s.groups[n>>8]
		return g != nil && g[n>>6&3]&(1<<(n&63)) != 0
	}
	return s.names[id]
}

// len returns the number of ids in the set.
func (s *candSet) len() int {
	if s == nil {
		return 0
	}
	n := len(s.names)
	for _, g := range s.groups {
		for _, w := range g {
			n += bits.OnesCount64(w)
		}
	}
	return n
}

// or adds the ids of o to s.
func (s *candSet) or(o *candSet) {
	if o == nil {
		return
	}
	for k, og := range o.groups {
		g := s.groups[k]
		if g == nil {
			g = &[4]uint64{}
			s.groups[k] = g
		}
		for i := range g {
			g[i] |= og[i]
		}
	}
	for id := range o.names {
		s.add(id)
	}
}

// and returns the ids in both s and o.
func (s *candSet) and(o *candSet) *candSet {
	out := newCandSet()
	for k, g := range s.groups {
		og := o.groups[k]
		if og == nil {
			continue
		}
		var ng [4]uint64
		nz := uint64(0)
		for i := range ng {
			ng[i] = g[i] & og[i]
			nz |= ng[i]
		}
		if nz != 0 {
			out.groups[k] = &ng
		}
	}
	for id := range s.names {
		if o.names[id] {
			out.add(id)
		}
	}
	return out
}

// each calls f with every id of the set, in no order.
func (s *candSet) each(f func(id string)) {
	for k, g := range s.groups {
		for i, w := range g {
			for w != 0 {
				b := uint64(bits.TrailingZeros64(w))
				w &= w - 1
				f("a" + strconv.FormatUint(k<<8|uint64(i)<<6|b, 36))
			}
		}
	}
	for id := range s.names {
		f(id)
	}
}

// fieldSets holds, for one query token, the emails with a token containing
// it in each field (bit i of the field masks: sets[i]).
type fieldSets [6]*candSet

// add records that id has the token in the fields of mask.
func (fs *fieldSets) add(id []byte, mask uint8) {
	for i := range fs {
		if mask&(1<<i) == 0 {
			continue
		}
		if fs[i] == nil {
			fs[i] = newCandSet()
		}
		fs[i].addBytes(id)
	}
}

// hasIn reports whether id has the token in one of fields.
func (fs *fieldSets) hasIn(id string, fields uint8) bool {
	for i, s := range fs {
		if fields&(1<<i) != 0 && s.has(id) {
			return true
		}
	}
	return false
}

// in returns the emails with the token in one of fields.
func (fs *fieldSets) in(fields uint8) *candSet {
	out := newCandSet()
	for i, s := range fs {
		if fields&(1<<i) != 0 {
			out.or(s)
		}
	}
	return out
}
