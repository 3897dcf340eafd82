package admin

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/internal/auth"
	"github.com/jmapd/jmapd/store"
)

func TestDemo_ProvisionsUsersSharedMailboxAndGroup(t *testing.T) {
	st := openStore(t)
	var out bytes.Buffer
	created, err := Demo(context.Background(), st, &out)
	if err != nil || !created {
		t.Fatalf("Demo = %v, %v", created, err)
	}
	if s := principalState(t, st); s != 1 {
		t.Errorf("Principal state %d, want 1: one transaction", s)
	}
	logins := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		email, pw, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("login line %q", line)
		}
		logins[email] = pw
	}
	if len(logins) != 2 {
		t.Fatalf("logins %v, want alice and bob", logins)
	}
	var members []store.PrincipalID
	for _, email := range []string{DemoAlice, DemoBob} {
		p := principal(t, st, email)
		if p.Type != store.Individual || p.Shared || p.Account != store.AccountID(p.ID) {
			t.Errorf("%s = %+v", email, p)
		}
		if !auth.CheckPassword(passwordHash(t, st, p.ID), logins[email]) {
			t.Errorf("printed password of %s does not verify", email)
		}
		members = append(members, p.ID)
	}
	support := principal(t, st, DemoSupport)
	if support.Type != store.Individual || !support.Shared || support.Account != store.AccountID(support.ID) {
		t.Errorf("support = %+v", support)
	}
	if _, ok := take(t, st).Hashes[support.ID]; !ok || take(t, st).Hashes[support.ID] != "" {
		t.Error("the shared mailbox has a password")
	}
	team := principal(t, st, DemoTeam)
	if team.Type != store.Group || team.Account != "" || !slices.Equal(team.Members, members) {
		t.Errorf("team = %+v, want members %v", team, members)
	}
}

func TestDemo_DoesNothingOnceProvisioned(t *testing.T) {
	st := openStore(t)
	if _, err := Demo(context.Background(), st, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	before := take(t, st)
	var out bytes.Buffer
	created, err := Demo(context.Background(), st, &out)
	if err != nil || created || out.Len() != 0 {
		t.Errorf("second Demo = %v, %v, output %q", created, err, out.String())
	}
	if after := take(t, st); !reflect.DeepEqual(before, after) {
		t.Error("second Demo changed the store")
	}
}

func TestDemo_DoesNothingWhenAnyPrincipalExists(t *testing.T) {
	st := openStore(t)
	runOK(t, st, "", "shared", "add", "info@example.test")
	before := take(t, st)
	var out bytes.Buffer
	created, err := Demo(context.Background(), st, &out)
	if err != nil || created || out.Len() != 0 {
		t.Errorf("Demo on a store with a principal = %v, %v, output %q", created, err, out.String())
	}
	if after := take(t, st); !reflect.DeepEqual(before, after) {
		t.Error("Demo changed the store")
	}
}
