package methods

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// candSet agrees with a map of ids, for ids of the store's form (dense
// and sparse) and any other.
func TestCandSet_AgreesWithMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	id := func() string {
		switch rng.IntN(4) {
		case 0:
			return "a" + strconv.FormatUint(rng.Uint64N(600), 36) // dense
		case 1:
			return "a" + strconv.FormatUint(rng.Uint64(), 36) // sparse, up to 13 digits
		case 2:
			return []string{"a0", "A1", "a-1", "x", "a01", "aZ"}[rng.IntN(6)] // not the store's form
		default:
			return "b" + strconv.Itoa(rng.IntN(50))
		}
	}
	build := func(n int) (*candSet, map[string]bool) {
		s, m := newCandSet(), map[string]bool{}
		for range n {
			x := id()
			s.add(x)
			m[x] = true
		}
		return s, m
	}
	check := func(name string, s *candSet, m map[string]bool) {
		t.Helper()
		if s.len() != len(m) {
			t.Fatalf("%s: len %d, want %d", name, s.len(), len(m))
		}
		var got, want []string
		s.each(func(x string) { got = append(got, x) })
		for x := range m {
			want = append(want, x)
			if !s.has(x) {
				t.Fatalf("%s: %q missing", name, x)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: each gives %v, want %v", name, got, want)
		}
		for range 200 {
			if x := id(); s.has(x) != m[x] {
				t.Fatalf("%s: has(%q) = %v", name, x, s.has(x))
			}
		}
	}
	for range 50 {
		a, am := build(rng.IntN(400))
		b, bm := build(rng.IntN(400))
		check("a", a, am)
		both, bothM := a.and(b), map[string]bool{}
		for x := range am {
			if bm[x] {
				bothM[x] = true
			}
		}
		check("and", both, bothM)
		a.or(b)
		for x := range bm {
			am[x] = true
		}
		check("or", a, am)
	}
}
