package jmap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/jmapd/jmapd/store"
)

// oneAccount is the Accounts of a registry with one account, testAcct.
type oneAccount struct{}

func (oneAccount) Session(context.Context, *Caller) ([]*Account, map[string]store.AccountID, string, error) {
	return nil, nil, "s", nil
}

func (oneAccount) Lookup(_ context.Context, _ *Caller, id store.AccountID) (*Account, error) {
	if id != testAcct {
		return nil, store.ErrNotFound
	}
	return &Account{ID: testAcct, IsPersonal: true, Capabilities: map[string]any{CapCore: struct{}{}}}, nil
}

func (oneAccount) SessionState(context.Context, *Caller) (string, error) { return "s", nil }

// failingStore answers its nth Update (counting from 1) with fail[n]
// instead of running it.
type failingStore struct {
	store.Store
	n    int
	fail map[int]error
}

func (s *failingStore) Update(ctx context.Context, fn func(tx store.Tx) error) ([]store.StateChange, error) {
	s.n++
	if err := s.fail[s.n]; err != nil {
		return nil, err
	}
	return s.Store.Update(ctx, fn)
}

// A /set run in parts (the whole was too big for one transaction) whose
// later part fails for another reason keeps what the first part stored:
// the first part's updates are answered as updated, the later part's as
// serverFail, and the call is no method error, since changes were made
// (RFC 8620 §5.3: each update stands alone).
func TestSet_LaterPartFailsAlone(t *testing.T) {
	db := openTestStore(t)
	if _, err := db.Update(context.Background(), func(tx store.Tx) error {
		for i := range 4 {
			if err := tx.Create(testAcct, testType, fmt.Sprint("x", i), []byte(`{"name":"a"}`)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	errDisk := errors.New("disk gone")
	st := &failingStore{Store: db, fail: map[int]error{1: store.ErrTxnTooBig, 3: errDisk}}
	r := NewRegistry(st, oneAccount{}, DefaultLimits())
	r.Register(&Type{Name: testType, Capability: CapCore, Properties: []string{"id", "name"}}, "set")
	args := `{"accountId":"A1","update":{"x0":{"name":"b"},"x1":{"name":"b"},"x2":{"name":"b"},"x3":{"name":"b"}}}`
	resp := r.Execute(context.Background(), &Caller{Principal: "A1"}, &Request{Using: []string{CapCore},
		MethodCalls: []Invocation{{Name: testType + "/set", Args: json.RawMessage(args), CallID: "0"}}}, "s")
	if st.n != 3 {
		t.Fatalf("%d Updates, want the whole, then two halves", st.n)
	}
	out := resp.MethodResponses[0]
	if out.Name == "error" {
		t.Fatalf("the call failed as a whole after its first part was stored: %s", out.Args)
	}
	var got struct {
		OldState, NewState string
		Updated            map[string]any
		NotUpdated         map[string]SetError
	}
	if err := json.Unmarshal(out.Args, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Updated) != 2 || len(got.NotUpdated) != 2 {
		t.Fatalf("updated %v, notUpdated %v: want two of each", got.Updated, got.NotUpdated)
	}
	for id, e := range got.NotUpdated {
		if e.Type != ErrServerFail {
			t.Errorf("%s: %s, want serverFail", id, e.Type)
		}
	}
	if got.OldState != stateAfter(1) || got.NewState != stateAfter(2) {
		t.Errorf("states %s -> %s, want %s -> %s", got.OldState, got.NewState, stateAfter(1), stateAfter(2))
	}
	if err := db.View(context.Background(), func(tx store.Tx) error {
		for i := range 4 {
			id := fmt.Sprint("x", i)
			b, err := tx.Get(testAcct, testType, id)
			if err != nil {
				return err
			}
			_, updated := got.Updated[id]
			name, _ := Member(b, "name")
			if want := map[bool]string{true: "b", false: "a"}[updated]; string(name) != `"`+want+`"` {
				t.Errorf("%s stored as %s, want name %q", id, b, want)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
