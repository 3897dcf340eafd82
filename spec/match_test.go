package spec

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// scope holds what placeholders refer to while one scenario runs: the
// values captured so far and the users' account ids and names.
type scope struct {
	captures map[string]any
	// user answers "$account" and "$username" for the named user ("" is
	// the scenario's main user).
	user func(what, name string) (string, error)
	// status is the HTTP status of the response being matched.
	status int
}

func (s *scope) clone() *scope {
	c := *s
	c.captures = make(map[string]any, len(s.captures))
	for k, v := range s.captures {
		c.captures[k] = v
	}
	return &c
}

// directive splits "$name:arg" into name and arg; ok is false for a string
// that is not a placeholder ("$$x" is the literal "$x").
func directive(s string) (name, arg string, ok bool) {
	if !strings.HasPrefix(s, "$") || strings.HasPrefix(s, "$$") || strings.HasPrefix(s, "${") {
		return "", "", false
	}
	name, arg, _ = strings.Cut(s[1:], ":")
	return name, arg, true
}

// literal returns s with its "$$" escape removed.
func literal(s string) string {
	if strings.HasPrefix(s, "$$") {
		return s[1:]
	}
	return s
}

// lookup resolves the placeholders that name a value the scenario already
// knows: a capture, or a user's account id or login name.
func (s *scope) lookup(name, arg string) (any, bool, error) {
	switch name {
	case "ref":
		v, ok := s.captures[arg]
		if !ok {
			return nil, true, fmt.Errorf("nothing was captured as %q", arg)
		}
		return v, true, nil
	case "account", "username":
		v, err := s.user(name, arg)
		return v, true, err
	}
	return nil, false, nil
}

var interpolation = regexp.MustCompile(`\$\{([a-zA-Z]+)(?::([^}]*))?\}`)

// interpolate replaces each "${name:arg}" inside s.
func (s *scope) interpolate(str string) (string, error) {
	var err error
	out := interpolation.ReplaceAllStringFunc(str, func(m string) string {
		sub := interpolation.FindStringSubmatch(m)
		v, known, lerr := s.lookup(sub[1], sub[2])
		if !known {
			lerr = fmt.Errorf("unknown placeholder %s", m)
		}
		if lerr != nil {
			err = lerr
			return m
		}
		switch x := v.(type) {
		case string:
			return x
		case json.Number:
			return x.String()
		}
		err = fmt.Errorf("%s is a %s, not a string", m, typeName(v))
		return m
	})
	return out, err
}

// fillString resolves a string of a request: a whole-string placeholder
// keeps the type of what it refers to; "${...}" parts are spliced in.
func (s *scope) fillString(str string) (any, error) {
	if name, arg, ok := directive(str); ok {
		v, known, err := s.lookup(name, arg)
		if !known {
			return nil, fmt.Errorf("unknown placeholder %q in a request (write $$ for a literal $)", str)
		}
		return v, err
	}
	if strings.HasPrefix(str, "$$") {
		return literal(str), nil
	}
	return s.interpolate(str)
}

// fill resolves every placeholder of a request value.
func (s *scope) fill(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return s.fillString(x)
	case []any:
		items, err := s.expand(x)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		for i, item := range items {
			if out[i], err = s.fill(item); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *object:
		if _, ok := x.vals["$repeat"]; ok {
			return nil, fmt.Errorf("$repeat is only allowed as an array element")
		}
		out := newObject()
		for _, k := range x.keys {
			key, err := s.fillKey(k)
			if err != nil {
				return nil, err
			}
			val, err := s.fill(x.vals[k])
			if err != nil {
				return nil, err
			}
			out.set(key, val)
		}
		return out, nil
	}
	return v, nil
}

// fillKey resolves a placeholder used as an object member name.
func (s *scope) fillKey(k string) (string, error) {
	v, err := s.fillString(k)
	if err != nil {
		return "", err
	}
	str, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("member name %q is a %s, not a string", k, typeName(v))
	}
	return str, nil
}

// expand replaces each {"$repeat": N, "$plus": K, "$item": X} element of
// an array by N+K copies of X, with "${i}" in its strings replaced by the
// copy's index. N is a number or "$ref:NAME".
func (s *scope) expand(arr []any) ([]any, error) {
	var out []any
	for _, el := range arr {
		o, ok := el.(*object)
		if !ok {
			out = append(out, el)
			continue
		}
		rep, ok := o.vals["$repeat"]
		if !ok {
			out = append(out, el)
			continue
		}
		for _, k := range o.keys {
			if k != "$repeat" && k != "$plus" && k != "$item" {
				return nil, fmt.Errorf("$repeat has an unknown member %q", k)
			}
		}
		if str, ok := rep.(string); ok {
			name, arg, isDir := directive(str)
			v, known, err := s.lookup(name, arg)
			if !isDir || !known {
				return nil, fmt.Errorf("$repeat count %q is not a number or $ref", str)
			}
			if err != nil {
				return nil, err
			}
			rep = v
		}
		n, err := intOf(rep)
		if err != nil {
			return nil, fmt.Errorf("$repeat count: %v", err)
		}
		if plus, ok := o.vals["$plus"]; ok {
			p, err := intOf(plus)
			if err != nil {
				return nil, fmt.Errorf("$plus: %v", err)
			}
			n += p
		}
		if n < 0 || n > 100_000 {
			return nil, fmt.Errorf("$repeat count %d is out of range", n)
		}
		item, ok := o.vals["$item"]
		if !ok {
			return nil, fmt.Errorf("$repeat needs an $item")
		}
		for i := 0; i < n; i++ {
			out = append(out, withIndex(item, i))
		}
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func intOf(v any) (int, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s is not a number", render(v, 40))
	}
	i, err := strconv.Atoi(n.String())
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer", n)
	}
	return i, nil
}

// withIndex copies v, replacing "${i}" in every string and member name.
func withIndex(v any, i int) any {
	idx := strconv.Itoa(i)
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, "${i}", idx)
	case []any:
		out := make([]any, len(x))
		for j := range x {
			out[j] = withIndex(x[j], i)
		}
		return out
	case *object:
		out := newObject()
		for _, k := range x.keys {
			out.set(strings.ReplaceAll(k, "${i}", idx), withIndex(x.vals[k], i))
		}
		return out
	}
	return v
}

// A mismatch is one difference between the expectation and the answer.
type mismatch struct {
	Path string
	Msg  string
}

func (m mismatch) String() string { return m.Path + ": " + m.Msg }

// matcher compares an answer with an expectation and collects every
// difference; a broken expectation (an unknown placeholder) is one too.
type matcher struct {
	sc   *scope
	errs []mismatch
}

func (m *matcher) fail(path, format string, a ...any) {
	m.errs = append(m.errs, mismatch{path, fmt.Sprintf(format, a...)})
}

// try matches on a copy of the scope and keeps its captures only on
// success, for the alternatives of $anyOf and $unordered.
func (m *matcher) try(path string, want, got any) (bool, []mismatch) {
	sub := &matcher{sc: m.sc.clone()}
	sub.match(path, want, got)
	if len(sub.errs) > 0 {
		return false, sub.errs
	}
	m.sc.captures = sub.sc.captures
	return true, nil
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func memberPath(path, key string) string {
	if plainKey.MatchString(key) {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// match compares got with want at path.
func (m *matcher) match(path string, want, got any) {
	switch w := want.(type) {
	case string:
		m.matchString(path, w, got)
	case []any:
		m.matchArray(path, w, got)
	case *object:
		m.matchObject(path, w, got)
	default:
		if !equal(want, got) {
			m.fail(path, "want %s, got %s", render(want, 200), render(got, 200))
		}
	}
}

var (
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	utcDatePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d*[1-9])?Z$`)
	datePattern    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d*[1-9])?(Z|[+-]\d{2}:\d{2})$`)
)

// typeCheck answers whether got has the named placeholder type; known is
// false for a name that is not a type.
func typeCheck(name string, got any) (ok, known bool) {
	switch name {
	case "any":
		return true, true
	case "string":
		_, ok := got.(string)
		return ok, true
	case "state":
		s, ok := got.(string)
		return ok && s != "", true
	case "id":
		s, ok := got.(string)
		return ok && idPattern.MatchString(s), true
	case "bool":
		_, ok := got.(bool)
		return ok, true
	case "number":
		_, ok := got.(json.Number)
		return ok, true
	case "int", "uint":
		n, ok := got.(json.Number)
		if !ok {
			return false, true
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || i > 1<<53-1 || i < -(1<<53-1) {
			return false, true
		}
		return name == "int" || i >= 0, true
	case "object":
		_, ok := got.(*object)
		return ok, true
	case "array":
		_, ok := got.([]any)
		return ok, true
	case "utcdate", "date":
		s, ok := got.(string)
		if !ok {
			return false, true
		}
		re := datePattern
		if name == "utcdate" {
			re = utcDatePattern
		}
		if !re.MatchString(s) {
			return false, true
		}
		_, err := time.Parse(time.RFC3339Nano, s)
		return err == nil, true
	}
	return false, false
}

func (m *matcher) matchString(path, w string, got any) {
	name, arg, ok := directive(w)
	if !ok {
		if lit := literal(w); !equal(lit, got) {
			m.fail(path, "want %s, got %s", render(lit, 200), render(got, 200))
		}
		return
	}
	if tok, known := typeCheck(name, got); known {
		if !tok {
			m.fail(path, "want %s, got %s", w, render(got, 200))
			return
		}
		if arg != "" {
			m.sc.captures[arg] = got
		}
		return
	}
	switch name {
	case "capture":
		m.sc.captures[arg] = got
	case "ref", "account", "username":
		v, _, err := m.sc.lookup(name, arg)
		if err != nil {
			m.fail(path, "broken expectation %s: %v", w, err)
		} else if !equal(v, got) {
			m.fail(path, "want %s (%s), got %s", render(v, 200), w, render(got, 200))
		}
	case "notRef":
		v, ok := m.sc.captures[arg]
		if !ok {
			m.fail(path, "broken expectation %s: nothing was captured as %q", w, arg)
		} else if equal(v, got) {
			m.fail(path, "want a value other than %s (%s), got it", render(v, 200), w)
		}
	case "httpStatus":
		if !equal(json.Number(strconv.Itoa(m.sc.status)), got) {
			m.fail(path, "want the HTTP status %d, got %s", m.sc.status, render(got, 200))
		}
	case "gte":
		n, isNum := got.(json.Number)
		if !isNum || numCmp(n, json.Number(arg)) < 0 {
			m.fail(path, "want a number >= %s, got %s", arg, render(got, 200))
		}
	case "contains":
		s, isStr := got.(string)
		if !isStr || !strings.Contains(s, arg) {
			m.fail(path, "want a string containing %q, got %s", arg, render(got, 200))
		}
	case "regex":
		re, err := regexp.Compile(arg)
		if err != nil {
			m.fail(path, "broken expectation %s: %v", w, err)
			return
		}
		s, isStr := got.(string)
		if !isStr || !re.MatchString(s) {
			m.fail(path, "want a string matching %s, got %s", arg, render(got, 200))
		}
	case "absent":
		m.fail(path, "want no such member, got %s", render(got, 200))
	default:
		m.fail(path, "broken expectation: unknown placeholder %q (write $$ for a literal $)", w)
	}
}

func (m *matcher) matchArray(path string, w []any, got any) {
	g, ok := got.([]any)
	if !ok {
		m.fail(path, "want an array, got %s", render(got, 200))
		return
	}
	w, err := m.sc.expand(w)
	if err != nil {
		m.fail(path, "broken expectation: %v", err)
		return
	}
	if len(w) > 0 && w[0] == "$unordered" {
		m.matchUnordered(path, w[1:], g)
		return
	}
	if len(w) != len(g) {
		m.fail(path, "want %d elements, got %d: %s", len(w), len(g), render(g, 300))
	}
	for i := 0; i < len(w) && i < len(g); i++ {
		m.match(indexPath(path, i), w[i], g[i])
	}
}

// matchUnordered matches each expected element, in order, with the first
// unused element of got that matches it.
func (m *matcher) matchUnordered(path string, w, g []any) {
	if len(w) != len(g) {
		m.fail(path, "want %d elements in any order, got %d: %s", len(w), len(g), render(g, 300))
		return
	}
	used := make([]bool, len(g))
	for i, want := range w {
		found := false
		var firstErrs []mismatch
		for j, el := range g {
			if used[j] {
				continue
			}
			ok, errs := m.try(indexPath(path, j), want, el)
			if ok {
				used[j], found = true, true
				break
			}
			if firstErrs == nil {
				firstErrs = errs
			}
		}
		if !found {
			m.fail(path, "no element matches expected element %d %s (first try: %v)", i, render(want, 200), firstErrs)
		}
	}
}

func (m *matcher) matchObject(path string, w *object, got any) {
	if alts, ok := w.vals["$anyOf"]; ok && len(w.keys) == 1 {
		list, _ := alts.([]any)
		var all []mismatch
		for _, alt := range list {
			ok, errs := m.try(path, alt, got)
			if ok {
				return
			}
			all = append(all, errs...)
		}
		m.fail(path, "matches none of $anyOf: %v", all)
		return
	}
	if alts, ok := w.vals["$allOf"]; ok && len(w.keys) == 1 {
		list, _ := alts.([]any)
		for _, alt := range list {
			m.match(path, alt, got)
		}
		return
	}
	g, ok := got.(*object)
	if !ok {
		m.fail(path, "want an object, got %s", render(got, 200))
		return
	}
	partial := false
	seen := map[string]bool{}
	for _, k := range w.keys {
		want := w.vals[k]
		if k == "$partial" {
			partial = want == true
			continue
		}
		optional := strings.HasPrefix(k, "?")
		name := strings.TrimPrefix(k, "?")
		if n, arg, isDir := directive(name); isDir {
			v, known, err := m.sc.lookup(n, arg)
			s, isStr := v.(string)
			if !known || err != nil || !isStr {
				m.fail(path, "broken expectation: member name %q does not resolve to a string (%v)", name, err)
				continue
			}
			name = s
		} else {
			name = literal(name)
		}
		seen[name] = true
		gv, present := g.get(name)
		if want == "$absent" {
			if present {
				m.fail(memberPath(path, name), "want no such member, got %s", render(gv, 200))
			}
			continue
		}
		if !present {
			if !optional {
				m.fail(memberPath(path, name), "missing member, want %s", render(want, 200))
			}
			continue
		}
		m.match(memberPath(path, name), want, gv)
	}
	if partial {
		return
	}
	for _, k := range g.keys {
		if !seen[k] {
			m.fail(memberPath(path, k), "unexpected member %s", render(g.vals[k], 200))
		}
	}
}
