package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/internal/auth"
	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// openStore opens a Badger store in a temp dir and closes it at cleanup.
func openStore(t *testing.T) store.Store {
	t.Helper()
	db, err := badger.Open(badger.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// runOK runs a command that must succeed and returns its output.
func runOK(t *testing.T, st store.Store, stdin string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := Run(context.Background(), st, args, strings.NewReader(stdin), &out); err != nil {
		t.Fatalf("Run(%q) = %v", args, err)
	}
	return out.String()
}

func principalState(t *testing.T, st store.Store) store.State {
	t.Helper()
	var s store.State
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		s, err = tx.State(store.SystemAccount, "Principal")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshot is everything the admin commands write: the Principal state,
// and every principal with its password hash and tokens.
type snapshot struct {
	State      store.State
	Principals []store.Principal
	Hashes     map[store.PrincipalID]string
	Tokens     map[store.PrincipalID][]store.Token
}

func take(t *testing.T, st store.Store) snapshot {
	t.Helper()
	var s snapshot
	err := st.View(context.Background(), func(tx store.Tx) error {
		s = snapshot{Hashes: map[store.PrincipalID]string{}, Tokens: map[store.PrincipalID][]store.Token{}}
		var err error
		if s.State, err = tx.State(store.SystemAccount, "Principal"); err != nil {
			return err
		}
		pt := tx.Principals()
		for p, err := range pt.All() {
			if err != nil {
				return err
			}
			s.Principals = append(s.Principals, *p)
			h, err := pt.PasswordHash(p.ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			s.Hashes[p.ID] = h
			for tok, err := range pt.Tokens(p.ID) {
				if err != nil {
					return err
				}
				s.Tokens[p.ID] = append(s.Tokens[p.ID], *tok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func principal(t *testing.T, st store.Store, email string) *store.Principal {
	t.Helper()
	var p *store.Principal
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		p, err = tx.Principals().ByEmail(email)
		return err
	})
	if err != nil {
		t.Fatalf("principal %s: %v", email, err)
	}
	return p
}

func exists(t *testing.T, st store.Store, email string) bool {
	t.Helper()
	var found bool
	err := st.View(context.Background(), func(tx store.Tx) error {
		_, err := tx.Principals().ByEmail(email)
		found = err == nil
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func passwordHash(t *testing.T, st store.Store, id store.PrincipalID) string {
	t.Helper()
	var h string
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		h, err = tx.Principals().PasswordHash(id)
		return err
	})
	if err != nil {
		t.Fatalf("password hash of %s: %v", id, err)
	}
	return h
}

func tokens(t *testing.T, st store.Store, id store.PrincipalID) []store.Token {
	t.Helper()
	var out []store.Token
	err := st.View(context.Background(), func(tx store.Tx) error {
		out = nil
		for tok, err := range tx.Principals().Tokens(id) {
			if err != nil {
				return err
			}
			out = append(out, *tok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fixture is a store with users alice and bob, the shared mailbox
// support, the group team (alice), and a token of alice's.
func fixture(t *testing.T) store.Store {
	t.Helper()
	st := openStore(t)
	runOK(t, st, "", "user", "add", "alice@example.test", "--password", "alice-pw")
	runOK(t, st, "", "user", "add", "bob@example.test", "--password", "bob-pw")
	runOK(t, st, "", "shared", "add", "support@example.test")
	runOK(t, st, "", "group", "add", "team@example.test", "--member", "alice@example.test")
	runOK(t, st, "", "token", "create", "alice@example.test", "--name", "laptop")
	return st
}

func TestUserAdd_StoresUserWithOwnAccount(t *testing.T) {
	st := openStore(t)
	before := principalState(t, st)
	out := runOK(t, st, "", "user", "add", "Alice@Example.TEST", "--password", "correct horse")
	if out != "" {
		t.Errorf("output %q, want none when the password is given", out)
	}
	if got := principalState(t, st); got != before+1 {
		t.Errorf("Principal state %d → %d, want one transaction", before, got)
	}
	p := principal(t, st, "alice@example.test")
	if p.Email != "alice@example.test" || p.Name != "alice" || p.Type != store.Individual || p.Shared {
		t.Errorf("principal = %+v", p)
	}
	if p.Account != store.AccountID(p.ID) || p.ID == "" {
		t.Errorf("account %q, id %q: a user owns the account of its id", p.Account, p.ID)
	}
	if !auth.CheckPassword(passwordHash(t, st, p.ID), "correct horse") {
		t.Error("stored hash does not verify the password")
	}
}

func TestUserAdd_GeneratedPasswordPrintedOnce(t *testing.T) {
	st := openStore(t)
	out := runOK(t, st, "", "user", "add", "alice@example.test", "--name", "Alice Liddell")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 || lines[0] == "" {
		t.Fatalf("output %q, want the password on one line", out)
	}
	p := principal(t, st, "alice@example.test")
	if p.Name != "Alice Liddell" {
		t.Errorf("name %q", p.Name)
	}
	if !auth.CheckPassword(passwordHash(t, st, p.ID), lines[0]) {
		t.Error("printed password does not verify")
	}
}

func TestUserAdd_PasswordStdin(t *testing.T) {
	st := openStore(t)
	out := runOK(t, st, "s3cret pass\n", "user", "add", "alice@example.test", "--password-stdin")
	if out != "" {
		t.Errorf("output %q", out)
	}
	p := principal(t, st, "alice@example.test")
	if !auth.CheckPassword(passwordHash(t, st, p.ID), "s3cret pass") {
		t.Error("password from stdin (newline stripped) does not verify")
	}
}

func TestRun_FlagsBeforeAndAfterPositionals(t *testing.T) {
	st := openStore(t)
	runOK(t, st, "", "user", "add", "a@example.test", "--password", "x", "--data", "/elsewhere", "--name=Ann")
	runOK(t, st, "", "--data", "/elsewhere", "user", "--password=y", "add", "--name", "Bea", "b@example.test")
	runOK(t, st, "", "group", "add", "g@example.test", "--member", "a@example.test", "--company", "-member", "b@example.test", "--archive")
	if n := principal(t, st, "a@example.test").Name; n != "Ann" {
		t.Errorf("a: name %q", n)
	}
	if n := principal(t, st, "b@example.test").Name; n != "Bea" {
		t.Errorf("b: name %q", n)
	}
	g := principal(t, st, "g@example.test")
	if !g.Archive || !g.Company || len(g.Members) != 2 {
		t.Errorf("group = %+v", g)
	}
	out := runOK(t, st, "", "user", "list", "--json", "--data", "d")
	var users []map[string]any
	if err := json.Unmarshal([]byte(out), &users); err != nil || len(users) != 2 {
		t.Errorf("user list --json = %q (%v)", out, err)
	}
}

func TestUserAdd_JSON(t *testing.T) {
	st := openStore(t)
	out := runOK(t, st, "", "user", "add", "alice@example.test", "--json")
	var got struct {
		ID, Type, Email, Name, AccountID, Password string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	p := principal(t, st, "alice@example.test")
	if got.ID != string(p.ID) || got.AccountID != string(p.Account) || got.Type != "user" || got.Email != p.Email {
		t.Errorf("json %+v, principal %+v", got, p)
	}
	if !auth.CheckPassword(passwordHash(t, st, p.ID), got.Password) {
		t.Error("password in JSON does not verify")
	}
}

func TestUserPasswd_ReplacesHash(t *testing.T) {
	st := fixture(t)
	alice := principal(t, st, "alice@example.test")
	runOK(t, st, "", "user", "passwd", "alice@example.test", "--password", "new-pw")
	h := passwordHash(t, st, alice.ID)
	if !auth.CheckPassword(h, "new-pw") || auth.CheckPassword(h, "alice-pw") {
		t.Error("hash does not verify the new password only")
	}
	runOK(t, st, "from stdin\r\n", "user", "passwd", "--password-stdin", "ALICE@example.test")
	if !auth.CheckPassword(passwordHash(t, st, alice.ID), "from stdin") {
		t.Error("password from stdin does not verify")
	}
	out := strings.TrimSpace(runOK(t, st, "", "user", "passwd", "alice@example.test"))
	if out == "" || !auth.CheckPassword(passwordHash(t, st, alice.ID), out) {
		t.Errorf("generated password %q does not verify", out)
	}
}

func TestUserList_OnlyUsersSortedByEmail(t *testing.T) {
	st := fixture(t)
	runOK(t, st, "", "user", "add", "aaron@example.test", "--name", "Aaron A", "--password", "x")
	out := runOK(t, st, "", "user", "list")
	want := "aaron@example.test\tAaron A\nalice@example.test\talice\nbob@example.test\tbob\n"
	if out != want {
		t.Errorf("user list = %q, want %q", out, want)
	}
	var users []struct{ Email, Name, AccountID string }
	if err := json.Unmarshal([]byte(runOK(t, st, "", "user", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 || users[1].Email != "alice@example.test" || users[1].AccountID == "" {
		t.Errorf("user list --json = %+v", users)
	}
	empty := openStore(t)
	if out := runOK(t, empty, "", "user", "list", "--json"); out != "[]\n" {
		t.Errorf("empty user list --json = %q, want []", out)
	}
}

func TestUserRemove_DeletesUserCredentialsAndMemberships(t *testing.T) {
	st := fixture(t)
	alice := principal(t, st, "alice@example.test")
	if len(tokens(t, st, alice.ID)) != 1 {
		t.Fatal("fixture: alice has no token")
	}
	before := principalState(t, st)
	runOK(t, st, "", "user", "remove", "alice@example.test")
	if got := principalState(t, st); got != before+1 {
		t.Errorf("Principal state %d → %d, want one transaction", before, got)
	}
	if exists(t, st, "alice@example.test") {
		t.Fatal("alice still exists")
	}
	if g := principal(t, st, "team@example.test"); slices.Contains(g.Members, alice.ID) {
		t.Errorf("team still lists alice: %v", g.Members)
	}
	if len(tokens(t, st, alice.ID)) != 0 {
		t.Error("alice's tokens survived")
	}
	err := st.View(context.Background(), func(tx store.Tx) error {
		_, err := tx.Principals().PasswordHash(alice.ID)
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("password hash after remove: %v", err)
	}
	runOK(t, st, "", "user", "add", "alice@example.test", "--password", "again")
	if principal(t, st, "alice@example.test").ID == alice.ID {
		t.Error("re-added user reuses the old id")
	}
}

func TestGroupAdd_MembersAndFlags(t *testing.T) {
	st := fixture(t)
	out := runOK(t, st, "", "group", "add", "all@example.test", "--name", "Everyone",
		"--member", "alice@example.test", "--member", "BOB@example.test", "--member", "alice@example.test", "--json")
	g := principal(t, st, "all@example.test")
	alice, bob := principal(t, st, "alice@example.test"), principal(t, st, "bob@example.test")
	if g.Type != store.Group || g.Name != "Everyone" || g.Account != "" || g.Archive || g.Company {
		t.Errorf("group = %+v", g)
	}
	if !slices.Equal(g.Members, []store.PrincipalID{alice.ID, bob.ID}) {
		t.Errorf("members = %v, want [%s %s]", g.Members, alice.ID, bob.ID)
	}
	var got struct{ Members []string }
	if err := json.Unmarshal([]byte(out), &got); err != nil || !slices.Equal(got.Members, []string{"alice@example.test", "bob@example.test"}) {
		t.Errorf("--json output %q (%v)", out, err)
	}
	runOK(t, st, "", "group", "add", "empty@example.test")
	if g := principal(t, st, "empty@example.test"); len(g.Members) != 0 || g.Name != "empty" {
		t.Errorf("empty group = %+v", g)
	}
}

func TestGroupMember_AddAndRemove(t *testing.T) {
	st := fixture(t)
	alice, bob := principal(t, st, "alice@example.test"), principal(t, st, "bob@example.test")
	runOK(t, st, "", "group", "member", "add", "team@example.test", "bob@example.test")
	if g := principal(t, st, "team@example.test"); !slices.Equal(g.Members, []store.PrincipalID{alice.ID, bob.ID}) {
		t.Errorf("after add: %v", g.Members)
	}
	runOK(t, st, "", "group", "member", "remove", "team@example.test", "alice@example.test", "--data", "x")
	if g := principal(t, st, "team@example.test"); !slices.Equal(g.Members, []store.PrincipalID{bob.ID}) {
		t.Errorf("after remove: %v", g.Members)
	}
}

func TestSharedAdd_OwnsAccountWithoutPassword(t *testing.T) {
	st := openStore(t)
	runOK(t, st, "", "shared", "add", "support@example.test", "--name", "Support Desk")
	p := principal(t, st, "support@example.test")
	if p.Type != store.Individual || !p.Shared || p.Name != "Support Desk" || p.Account != store.AccountID(p.ID) {
		t.Errorf("shared = %+v", p)
	}
	err := st.View(context.Background(), func(tx store.Tx) error {
		_, err := tx.Principals().PasswordHash(p.ID)
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("shared mailbox has a password hash (%v)", err)
	}
}

func TestToken_CreateListRevoke(t *testing.T) {
	st := fixture(t)
	bob := principal(t, st, "bob@example.test")
	secret := strings.TrimSpace(runOK(t, st, "", "token", "create", "bob@example.test", "--name", "phone"))
	var tok *store.Token
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		tok, err = tx.Principals().TokenBySecret(auth.HashToken(secret))
		return err
	})
	if err != nil || tok.Principal != bob.ID || tok.Name != "phone" {
		t.Fatalf("token for printed secret %q: %+v, %v", secret, tok, err)
	}
	out := runOK(t, st, "", "token", "list", "bob@example.test")
	fields := strings.Split(strings.TrimSuffix(out, "\n"), "\t")
	if len(fields) != 3 || fields[0] != tok.ID || fields[1] != "phone" {
		t.Errorf("token list = %q", out)
	}
	if strings.Contains(out, secret) {
		t.Error("token list shows the secret")
	}
	runOK(t, st, "", "token", "revoke", tok.ID)
	if toks := tokens(t, st, bob.ID); len(toks) != 0 {
		t.Errorf("tokens after revoke: %v", toks)
	}
	if out := runOK(t, st, "", "token", "list", "bob@example.test", "--json"); out != "[]\n" {
		t.Errorf("token list --json after revoke = %q", out)
	}
	var created struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(runOK(t, st, "", "token", "create", "bob@example.test", "--json")), &created); err != nil ||
		created.ID == "" || !strings.HasPrefix(created.Secret, auth.TokenPrefix) {
		t.Errorf("token create --json = %+v (%v)", created, err)
	}
}

// TestRun_ErrorsChangeNothing runs every refused command against the same
// fixture and checks that principals, hashes, tokens and the Principal
// state are as they were.
func TestRun_ErrorsChangeNothing(t *testing.T) {
	st := fixture(t)
	aliceToken := tokens(t, st, principal(t, st, "alice@example.test").ID)[0].ID
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string // in the error
	}{
		{"no command", "", nil, "no command"},
		{"only --data", "", []string{"--data", "d"}, "no command"},
		{"unknown command", "", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"missing subcommand", "", []string{"user"}, "missing subcommand"},
		{"unknown subcommand", "", []string{"user", "frob"}, `unknown subcommand "frob"`},
		{"group member without verb", "", []string{"group", "member", "team@example.test"}, "unknown subcommand"},
		{"unknown flag", "", []string{"user", "add", "x@example.test", "--bogus"}, "unknown flag --bogus"},
		{"unknown flag value not echoed", "", []string{"user", "add", "x@example.test", "--passwd=hunter2"}, "unknown flag --passwd"},
		{"flag of another command", "", []string{"user", "list", "--member", "a@example.test"}, "unknown flag --member"},
		{"flag without value", "", []string{"user", "add", "x@example.test", "--name"}, "needs a value"},
		{"bool flag with value", "", []string{"user", "list", "--json=yes"}, "takes no value"},
		{"flag twice", "", []string{"user", "add", "x@example.test", "--name", "a", "--name", "b"}, "given twice"},
		{"missing email", "", []string{"user", "add", "--password", "x"}, "missing EMAIL"},
		{"missing member", "", []string{"group", "member", "add", "team@example.test"}, "missing MEMBER_EMAIL"},
		{"extra argument", "", []string{"user", "add", "x@example.test", "pw"}, `unexpected argument "pw"`},
		{"both password flags", "pw\n", []string{"user", "add", "x@example.test", "--password", "pw", "--password-stdin"}, "exclude each other"},
		{"empty password", "", []string{"user", "add", "x@example.test", "--password="}, "empty password"},
		{"empty stdin password", "\n", []string{"user", "add", "x@example.test", "--password-stdin"}, "empty password"},
		{"two-line stdin password", "a\nb\n", []string{"user", "add", "x@example.test", "--password-stdin"}, "one line"},
		{"add existing user", "", []string{"user", "add", "ALICE@example.test", "--password", "x"}, "already exists"},
		{"add user over group", "", []string{"user", "add", "team@example.test", "--password", "x"}, "already exists"},
		{"add user over shared", "", []string{"user", "add", "support@example.test", "--password", "x"}, "already exists"},
		{"add group over user", "", []string{"group", "add", "bob@example.test"}, "already exists"},
		{"add shared over group", "", []string{"shared", "add", "team@example.test"}, "already exists"},
		{"bare local part", "", []string{"user", "add", "alice", "--password", "x"}, "not an email address"},
		{"display name", "", []string{"user", "add", "Alice <x@example.test>", "--password", "x"}, "not an email address"},
		{"angle brackets", "", []string{"user", "add", "<x@example.test>", "--password", "x"}, "not an email address"},
		{"two @", "", []string{"user", "add", "x@y@example.test", "--password", "x"}, "not an email address"},
		{"no local part", "", []string{"shared", "add", "@example.test"}, "not an email address"},
		{"no domain", "", []string{"shared", "add", "x@"}, "not an email address"},
		{"quoted local part", "", []string{"shared", "add", `"x y"@example.test`}, "not an email address"},
		{"comment", "", []string{"shared", "add", "x@example.test (me)"}, "not an email address"},
		{"empty address", "", []string{"shared", "add", ""}, "not an email address"},
		{"malformed member", "", []string{"group", "add", "g@example.test", "--member", "bob"}, "not an email address"},
		{"unknown member", "", []string{"group", "add", "g@example.test", "--member", "alice@example.test", "--member", "nobody@example.test"}, "unknown member nobody@example.test"},
		{"group as member", "", []string{"group", "add", "g@example.test", "--member", "team@example.test"}, "not a user"},
		{"shared as member", "", []string{"group", "add", "g@example.test", "--member", "support@example.test"}, "not a user"},
		{"member add unknown group", "", []string{"group", "member", "add", "nogroup@example.test", "bob@example.test"}, "unknown group"},
		{"member add to a user", "", []string{"group", "member", "add", "alice@example.test", "bob@example.test"}, "not a group"},
		{"member add unknown member", "", []string{"group", "member", "add", "team@example.test", "nobody@example.test"}, "unknown member"},
		{"member add shared", "", []string{"group", "member", "add", "team@example.test", "support@example.test"}, "not a user"},
		{"member add twice", "", []string{"group", "member", "add", "team@example.test", "alice@example.test"}, "already a member"},
		{"member remove non-member", "", []string{"group", "member", "remove", "team@example.test", "bob@example.test"}, "not a member"},
		{"passwd unknown user", "", []string{"user", "passwd", "nobody@example.test", "--password", "x"}, "unknown user"},
		{"passwd shared", "", []string{"user", "passwd", "support@example.test", "--password", "x"}, "not a user"},
		{"passwd group", "", []string{"user", "passwd", "team@example.test", "--password", "x"}, "not a user"},
		{"passwd empty", "", []string{"user", "passwd", "alice@example.test", "--password", ""}, "empty password"},
		{"remove unknown user", "", []string{"user", "remove", "nobody@example.test"}, "unknown user"},
		{"remove shared as user", "", []string{"user", "remove", "support@example.test"}, "not a user"},
		{"remove group as user", "", []string{"user", "remove", "team@example.test"}, "not a user"},
		{"token for unknown user", "", []string{"token", "create", "nobody@example.test"}, "unknown user"},
		{"token for shared", "", []string{"token", "create", "support@example.test"}, "not a user"},
		{"token list unknown user", "", []string{"token", "list", "nobody@example.test"}, "unknown user"},
		{"revoke unknown token", "", []string{"token", "revoke", "nosuchtoken"}, "unknown token"},
		{"revoke without id", "", []string{"token", "revoke"}, "missing TOKEN_ID"},
		{"share without --with", "", []string{"share", "alice@example.test", "--rights", "read"}, "--with"},
		{"share without --rights", "", []string{"share", "alice@example.test", "--with", "bob@example.test"}, "--rights"},
		{"share unknown level", "", []string{"share", "alice@example.test", "--with", "bob@example.test", "--rights", "admin"}, `unknown level "admin"`},
		{"share unknown account", "", []string{"share", "nobody@example.test", "--with", "bob@example.test", "--rights", "read"}, "no account nobody@example.test"},
		{"share with unknown", "", []string{"share", "alice@example.test", "--with", "nobody@example.test", "--rights", "read"}, "no user or group nobody@example.test"},
		{"share with oneself", "", []string{"share", "alice@example.test", "--with", "alice@example.test", "--rights", "read"}, "owns the account"},
		{"share with a shared mailbox", "", []string{"share", "alice@example.test", "--with", "support@example.test", "--rights", "read"}, "is a shared mailbox"},
		{"share empty mailbox name", "", []string{"share", "alice@example.test", "--with", "bob@example.test", "--rights", "read", "--mailbox="}, "--mailbox needs a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := take(t, st)
			var out bytes.Buffer
			err := Run(context.Background(), st, tt.args, strings.NewReader(tt.stdin), &out)
			if err == nil {
				t.Fatalf("Run(%q) succeeded, output %q", tt.args, out.String())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q quotes a flag value", err)
			}
			if out.Len() != 0 {
				t.Errorf("output %q on error", out.String())
			}
			if after := take(t, st); !reflect.DeepEqual(before, after) {
				t.Errorf("store changed:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
	if len(tokens(t, st, principal(t, st, "alice@example.test").ID)) != 1 || aliceToken == "" {
		t.Error("alice's token was touched")
	}
}

func TestRun_ErrorNamesCommand(t *testing.T) {
	st := fixture(t)
	err := Run(context.Background(), st, []string{"user", "add", "bob@example.test", "--password", "x"}, nil, &bytes.Buffer{})
	if err == nil || !strings.HasPrefix(err.Error(), "user add: ") {
		t.Errorf("error %v does not start with the command", err)
	}
	err = Run(context.Background(), st, []string{"group", "member", "add", "team@example.test", "--bogus"}, nil, &bytes.Buffer{})
	if err == nil || !strings.HasPrefix(err.Error(), "group member add: ") {
		t.Errorf("error %v does not start with the command", err)
	}
}
