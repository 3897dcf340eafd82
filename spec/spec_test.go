package spec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmapd/jmapd/jmaptest"
)

var (
	sessionURLFlag = flag.String("session-url", "", "run the scenarios against the JMAP server with this session `URL` instead of an in-process jmapd")
	userFlag       = flag.String("user", "", "`EMAIL:PASSWORD` of the main user on the -session-url server")
	user2Flag      = flag.String("user2", "", "`EMAIL:PASSWORD` of a second user on the -session-url server; scenarios acting as user2 are skipped without it")
)

// privateCapPrefix starts jmapd's own capabilities (the Note test type).
// Scenarios that require one run only in-process: they count on a fresh
// account, which a foreign server's shared test account is not.
const privateCapPrefix = "urn:jmapd:"

// allowKnownEnv names the environment variable that turns the failures of
// scenarios marked "knownFailure" into log lines.
const allowKnownEnv = "SPEC_ALLOW_KNOWN"

// scenario is one file of testdata: steps run in order against a fresh
// server (see doc.go for the format).
type scenario struct {
	Name         string   `json:"name"`
	Section      string   `json:"section"`
	Description  string   `json:"description"`
	Requires     []string `json:"requires"`
	KnownFailure string   `json:"knownFailure"`
	Steps        []step   `json:"steps"`

	file string
}

type step struct {
	Comment string          `json:"comment"`
	Section string          `json:"section"`
	As      string          `json:"as"`
	Request json.RawMessage `json:"request"`
	HTTP    *httpStep       `json:"http"`
	Expect  expectation     `json:"expect"`
}

type httpStep struct {
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Vars       map[string]string `json:"vars"`
	Body       *string           `json:"body"`
	BodyBase64 string            `json:"bodyBase64"`
	JSON       json.RawMessage   `json:"json"`
	Headers    map[string]string `json:"headers"`
	Auth       string            `json:"auth"`
}

type expectation struct {
	Status          json.RawMessage `json:"status"`
	Headers         json.RawMessage `json:"headers"`
	Body            json.RawMessage `json:"body"`
	BodyText        *string         `json:"bodyText"`
	BodyBase64      *string         `json:"bodyBase64"`
	MethodResponses json.RawMessage `json:"methodResponses"`
	CreatedIDs      json.RawMessage `json:"createdIds"`
}

// loadScenarios reads every scenario under testdata, checking that each
// file is I-JSON and names only known members.
func loadScenarios(t *testing.T) []*scenario {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata")
	}
	var out []*scenario
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decode(b); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var sc scenario
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		sc.file = filepath.ToSlash(strings.TrimPrefix(f, "testdata"+string(filepath.Separator)))
		if err := sc.check(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, &sc)
	}
	return out
}

var sectionPattern = regexp.MustCompile(`^RFC \d+ §\d+(\.\d+)*`)

func (sc *scenario) check() error {
	if sc.Name == "" || sc.Description == "" || len(sc.Steps) == 0 {
		return errors.New("a scenario needs a name, a description and steps")
	}
	if !sectionPattern.MatchString(sc.Section) {
		return fmt.Errorf("section %q does not read like \"RFC 8620 §3.6.1\"", sc.Section)
	}
	for i, st := range sc.Steps {
		if (st.Request == nil) == (st.HTTP == nil) {
			return fmt.Errorf("step %d: give exactly one of request and http", i+1)
		}
		if st.Section != "" && !sectionPattern.MatchString(st.Section) {
			return fmt.Errorf("step %d: section %q does not read like \"RFC 8620 §3.6.1\"", i+1, st.Section)
		}
		n := 0
		for _, set := range []bool{st.Expect.Body != nil || st.Expect.MethodResponses != nil, st.Expect.BodyText != nil, st.Expect.BodyBase64 != nil} {
			if set {
				n++
			}
		}
		if n > 1 || st.Expect.Body != nil && (st.Expect.MethodResponses != nil || st.Expect.CreatedIDs != nil) {
			return fmt.Errorf("step %d: expect at most one of body (or methodResponses), bodyText and bodyBase64", i+1)
		}
		if st.HTTP != nil && (st.Expect.MethodResponses != nil || st.Expect.CreatedIDs != nil) {
			return fmt.Errorf("step %d: methodResponses belongs to request steps", i+1)
		}
		if st.HTTP != nil {
			n := 0
			for _, set := range []bool{st.HTTP.Body != nil, st.HTTP.BodyBase64 != "", st.HTTP.JSON != nil} {
				if set {
					n++
				}
			}
			if n > 1 {
				return fmt.Errorf("step %d: give at most one of body, bodyBase64 and json", i+1)
			}
			switch st.HTTP.Auth {
			case "", "user", "none", "wrong":
			default:
				return fmt.Errorf("step %d: auth %q is not user, none or wrong", i+1, st.HTTP.Auth)
			}
		}
	}
	return nil
}

// TestScenarios runs every conformance scenario, each against a fresh
// in-process jmapd, or all of them against the -session-url server.
func TestScenarios(t *testing.T) {
	scenarios := loadScenarios(t)
	foreign := *sessionURLFlag != ""
	if foreign && *userFlag == "" {
		t.Fatal("-session-url needs -user EMAIL:PASSWORD")
	}
	allowKnown := os.Getenv(allowKnownEnv) == "1"
	for _, sc := range scenarios {
		t.Run(strings.TrimSuffix(sc.file, ".json"), func(t *testing.T) {
			if !foreign {
				t.Parallel()
			}
			runScenario(t, sc, foreign, allowKnown)
		})
	}
}

// user is a login the scenario acts as, with its session read on first use.
type user struct {
	name, email, password string
	session               *object
	account               string
	urls                  map[string]string
}

// env is one scenario's run: the server, its users and the captures.
type env struct {
	t          *testing.T
	sc         *scenario
	foreign    bool
	srv        *jmaptest.Server
	http       *http.Client
	origin     string
	sessionURL string
	users      map[string]*user
	scope      *scope
	// actor is the user the current step acts as ("as"; "" is user1).
	actor string
}

func runScenario(t *testing.T, sc *scenario, foreign, allowKnown bool) {
	e := &env{t: t, sc: sc, foreign: foreign, users: map[string]*user{},
		http: &http.Client{Timeout: 60 * time.Second}}
	e.scope = &scope{captures: map[string]any{}, user: e.userValue}
	if foreign {
		e.sessionURL = *sessionURLFlag
	} else {
		e.srv = jmaptest.Start(t)
		e.sessionURL = e.srv.URL() + "/.well-known/jmap"
	}
	u, err := url.Parse(e.sessionURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		t.Fatalf("session URL %q is not an absolute URL", e.sessionURL)
	}
	e.origin = u.Scheme + "://" + u.Host
	main := e.user("user1")
	if foreign {
		caps, _ := main.session.get("capabilities")
		for _, c := range sc.Requires {
			if strings.HasPrefix(c, privateCapPrefix) {
				t.Skipf("%s is jmapd's own test capability; its scenarios assume a fresh account", c)
			}
			if co, ok := caps.(*object); !ok || !hasKey(co, c) {
				t.Skipf("the server does not advertise %s", c)
			}
		}
	}
	for i, st := range sc.Steps {
		section := sc.Section
		if st.Section != "" {
			section = st.Section
		}
		e.actor = st.As
		errs, transcript := e.runStep(st)
		if len(errs) == 0 {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s step %d of %d (%s): %s\n", sc.file, i+1, len(sc.Steps), section, sc.Name)
		if st.Comment != "" {
			fmt.Fprintf(&b, "  step: %s\n", st.Comment)
		}
		for _, m := range errs {
			fmt.Fprintf(&b, "  %s\n", m)
		}
		b.WriteString(transcript)
		switch {
		case sc.KnownFailure != "" && allowKnown:
			t.Logf("known failure (%s):\n%s", sc.KnownFailure, b.String())
			return
		case sc.KnownFailure != "":
			t.Fatalf("%s  known failure: %s (set %s=1 to log it instead)", b.String(), sc.KnownFailure, allowKnownEnv)
		default:
			t.Fatal(b.String())
		}
	}
	if sc.KnownFailure != "" {
		t.Errorf("%s passes although it is marked knownFailure (%s): remove the mark", sc.file, sc.KnownFailure)
	}
}

func hasKey(o *object, k string) bool {
	_, ok := o.get(k)
	return ok
}

// user returns the named user ("" and "user1" are the main user), logged
// in and with its session read. A second user on a foreign server comes
// from -user2; without it the scenario is skipped.
func (e *env) user(name string) *user {
	e.t.Helper()
	if name == "" {
		name = "user1"
	}
	if u, ok := e.users[name]; ok {
		return u
	}
	u := &user{name: name}
	switch {
	case !e.foreign:
		c := e.srv.NewUser(e.t, name+"@example.test")
		u.email, u.password = c.Email, c.Password
	case name == "user1" || name == "user2":
		cred := *userFlag
		if name == "user2" {
			cred = *user2Flag
		}
		if cred == "" {
			e.t.Skipf("the scenario acts as %s: pass -%s EMAIL:PASSWORD", name, strings.TrimSuffix(name, "1"))
		}
		var ok bool
		if u.email, u.password, ok = strings.Cut(cred, ":"); !ok {
			e.t.Fatalf("-%s wants EMAIL:PASSWORD", strings.TrimSuffix(name, "1"))
		}
	default:
		e.t.Fatalf("%s: unknown user %q (user1 or user2)", e.sc.file, name)
	}
	e.users[name] = u
	e.loadSession(u)
	return u
}

// loadSession reads the user's session and picks the account the
// scenarios call "$account": the primary account of the first capability
// that has one, else the first personal account.
func (e *env) loadSession(u *user) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.sessionURL, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.SetBasicAuth(u.email, u.password)
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("session of %s: %v", u.name, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("session of %s: %s %v: %s", u.name, resp.Status, err, body)
	}
	v, err := decode(body)
	s, ok := v.(*object)
	if err != nil || !ok {
		e.t.Fatalf("session of %s is not a JSON object (%v): %s", u.name, err, body)
	}
	u.session = s
	u.urls = map[string]string{}
	for _, k := range []string{"apiUrl", "uploadUrl", "downloadUrl", "eventSourceUrl"} {
		if v, ok := s.get(k); ok {
			if str, ok := v.(string); ok {
				u.urls[k] = str
			}
		}
	}
	if pa, ok := s.vals["primaryAccounts"].(*object); ok {
		keys := slices.Clone(pa.keys)
		slices.Sort(keys)
		for _, k := range keys {
			if id, ok := pa.vals[k].(string); ok {
				u.account = id
				break
			}
		}
	}
	if accts, ok := s.vals["accounts"].(*object); ok && u.account == "" {
		for _, id := range accts.keys {
			if a, ok := accts.vals[id].(*object); ok && a.vals["isPersonal"] == true {
				u.account = id
				break
			}
		}
	}
	if u.account == "" {
		e.t.Fatalf("session of %s names no account: %s", u.name, body)
	}
}

// userValue answers "$account[:USER]" and "$username[:USER]"; without a
// user they name the one the current step acts as.
func (e *env) userValue(what, name string) (string, error) {
	if name == "" {
		name = e.actor
	}
	u := e.user(name)
	switch what {
	case "account":
		return u.account, nil
	case "username":
		return u.email, nil
	}
	return "", fmt.Errorf("unknown user value %q", what)
}

// runStep sends one step and matches the answer; it returns the
// mismatches and a transcript of the exchange for the report.
func (e *env) runStep(st step) ([]mismatch, string) {
	e.t.Helper()
	u := e.user(st.As)
	var (
		method = http.MethodPost
		target string
		body   []byte
		header = http.Header{}
		auth   = "user"
		err    error
	)
	if st.Request != nil {
		target = u.urls["apiUrl"]
		if target == "" {
			e.t.Fatalf("the session of %s has no apiUrl", u.name)
		}
		body = e.fillJSON(st.Request)
		header.Set("Content-Type", "application/json")
	} else {
		h := st.HTTP
		if h.Method != "" {
			method = h.Method
		}
		if h.Auth != "" {
			auth = h.Auth
		}
		target = e.resolveURL(u, h)
		switch {
		case h.Body != nil:
			s, err := e.scope.interpolate(*h.Body)
			if err != nil {
				e.t.Fatalf("%s: body: %v", e.sc.file, err)
			}
			body = []byte(s)
		case h.BodyBase64 != "":
			if body, err = base64.StdEncoding.DecodeString(h.BodyBase64); err != nil {
				e.t.Fatalf("%s: bodyBase64: %v", e.sc.file, err)
			}
		case h.JSON != nil:
			body = e.fillJSON(h.JSON)
		}
		for k, v := range h.Headers {
			s, err := e.scope.interpolate(v)
			if err != nil {
				e.t.Fatalf("%s: header %s: %v", e.sc.file, k, err)
			}
			header.Set(k, s)
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		e.t.Fatalf("%s: %v", e.sc.file, err)
	}
	req.Header = header
	switch auth {
	case "user":
		req.SetBasicAuth(u.email, u.password)
	case "wrong":
		req.SetBasicAuth(u.email, u.password+"-wrong")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, target, err)
	}
	got, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	resp.Body.Close()
	if err != nil {
		e.t.Fatalf("%s %s: read the answer: %v", method, target, err)
	}
	transcript := fmt.Sprintf("  sent: %s %s\n%s  answer: %s\n%s", method, target, indent(body), resp.Status, indent(got))
	return e.check(st, resp, got), transcript
}

// indent quotes a body for the transcript, cut to a few kilobytes.
func indent(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	s := string(b)
	if len(s) > 4000 {
		s = s[:4000] + "…"
	}
	return "    " + strings.TrimRight(s, "\n") + "\n"
}

// fillJSON decodes a request template, resolves its placeholders and
// encodes it, keeping member order.
func (e *env) fillJSON(raw json.RawMessage) []byte {
	e.t.Helper()
	v, err := decode(raw)
	if err != nil {
		e.t.Fatalf("%s: %v", e.sc.file, err)
	}
	if v, err = e.scope.fill(v); err != nil {
		e.t.Fatalf("%s: %v", e.sc.file, err)
	}
	b, err := marshal(v)
	if err != nil {
		e.t.Fatalf("%s: %v", e.sc.file, err)
	}
	return b
}

// resolveURL turns an http step's path into a URL: "$sessionUrl",
// "$session:NAME" (a URL template of the session, expanded with vars) or
// a path on the server's origin.
func (e *env) resolveURL(u *user, h *httpStep) string {
	e.t.Helper()
	p := h.Path
	switch {
	case p == "$sessionUrl":
		return e.sessionURL
	case strings.HasPrefix(p, "$session:"):
		tmpl, ok := u.urls[strings.TrimPrefix(p, "$session:")]
		if !ok {
			e.t.Fatalf("%s: the session has no %s", e.sc.file, p)
		}
		vars := map[string]string{}
		for k, v := range h.Vars {
			s, err := e.scope.fillKey(v)
			if err != nil {
				e.t.Fatalf("%s: vars.%s: %v", e.sc.file, k, err)
			}
			vars[k] = s
		}
		return expandTemplate(tmpl, vars)
	case strings.HasPrefix(p, "/"):
		s, err := e.scope.interpolate(p)
		if err != nil {
			e.t.Fatalf("%s: path: %v", e.sc.file, err)
		}
		return e.origin + s
	}
	e.t.Fatalf("%s: path %q is not $sessionUrl, $session:NAME or /PATH", e.sc.file, p)
	return ""
}

var templateVar = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// expandTemplate expands a level 1 URI template (RFC 6570 §3.2.2): every
// character but the unreserved ones is percent-encoded; variables without
// a value become empty.
func expandTemplate(tmpl string, vars map[string]string) string {
	return templateVar.ReplaceAllStringFunc(tmpl, func(m string) string {
		v := vars[m[1:len(m)-1]]
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	})
}

// check matches an answer against the step's expectation.
func (e *env) check(st step, resp *http.Response, body []byte) []mismatch {
	m := &matcher{sc: e.scope}
	e.scope.status = resp.StatusCode
	want := []int{http.StatusOK}
	if st.Expect.Status != nil {
		v, err := decode(st.Expect.Status)
		if err != nil {
			e.t.Fatalf("%s: status: %v", e.sc.file, err)
		}
		list, isList := v.([]any)
		if !isList {
			list = []any{v}
		}
		want = want[:0]
		for _, x := range list {
			n, err := intOf(x)
			if err != nil {
				e.t.Fatalf("%s: status: %v", e.sc.file, err)
			}
			want = append(want, n)
		}
	}
	if !slices.Contains(want, resp.StatusCode) {
		m.fail("HTTP status", "want %v, got %d", want, resp.StatusCode)
	}

	headers := newObject()
	if st.Expect.Headers != nil {
		v, err := decode(st.Expect.Headers)
		o, ok := v.(*object)
		if err != nil || !ok {
			e.t.Fatalf("%s: headers must be an object (%v)", e.sc.file, err)
		}
		headers = o
	}
	if st.Request != nil && resp.StatusCode == http.StatusOK && !hasHeader(headers, "Content-Type") {
		// RFC 8620 §3.1: the response MUST be of type application/json.
		headers.set("Content-Type", "$regex:^application/json\\s*(;|$)")
	}
	for _, k := range headers.keys {
		e.checkHeader(m, resp.Header, k, headers.vals[k])
	}

	expBody := st.Expect.Body
	if st.Request != nil && st.Expect.MethodResponses != nil {
		o := newObject()
		mr, err := decode(st.Expect.MethodResponses)
		if err != nil {
			e.t.Fatalf("%s: methodResponses: %v", e.sc.file, err)
		}
		o.set("methodResponses", mr)
		if st.Expect.CreatedIDs != nil {
			c, err := decode(st.Expect.CreatedIDs)
			if err != nil {
				e.t.Fatalf("%s: createdIds: %v", e.sc.file, err)
			}
			o.set("createdIds", c)
		}
		o.set("sessionState", "$state")
		expBody, _ = marshal(o)
	}
	if expBody != nil {
		wantBody, err := decode(expBody)
		if err != nil {
			e.t.Fatalf("%s: body: %v", e.sc.file, err)
		}
		gotBody, err := decode(body)
		if err != nil {
			m.fail("$", "the answer is not I-JSON (RFC 8620 §1.5): %v", err)
		} else {
			m.match("$", wantBody, gotBody)
		}
	}
	if st.Expect.BodyText != nil && string(body) != *st.Expect.BodyText {
		m.fail("body", "want %q, got %q", *st.Expect.BodyText, render(string(body), 300))
	}
	if st.Expect.BodyBase64 != nil {
		wantBytes, err := base64.StdEncoding.DecodeString(*st.Expect.BodyBase64)
		if err != nil {
			e.t.Fatalf("%s: expect.bodyBase64: %v", e.sc.file, err)
		}
		if !bytes.Equal(body, wantBytes) {
			m.fail("body", "want the %d octets of bodyBase64, got %d octets: %s", len(wantBytes), len(body),
				base64.StdEncoding.EncodeToString(body[:min(len(body), 300)]))
		}
	}
	return m.errs
}

func hasHeader(o *object, name string) bool {
	for _, k := range o.keys {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// checkHeader matches one expected header: "$absent", or a string
// expectation that one of the header's values must meet.
func (e *env) checkHeader(m *matcher, h http.Header, name string, want any) {
	path := "header " + name
	vals := h.Values(name)
	if want == "$absent" {
		if len(vals) > 0 {
			m.fail(path, "want no such header, got %q", vals)
		}
		return
	}
	if len(vals) == 0 {
		m.fail(path, "missing header, want %s", render(want, 200))
		return
	}
	var firstErrs []mismatch
	for _, v := range vals {
		ok, errs := m.try(path, want, v)
		if ok {
			return
		}
		if firstErrs == nil {
			firstErrs = errs
		}
	}
	m.errs = append(m.errs, firstErrs...)
}
