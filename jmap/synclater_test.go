package jmap

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/jmapd/jmapd/store"
)

// The durability waits a call leaves with SyncLater run once the last call
// of the request has run, before Execute returns; a wait that fails turns
// the answers of the calls that left one into serverFail, and the other
// answers stand.
func TestExecute_SyncLaterSettlesAfterTheLastCall(t *testing.T) {
	var order []string
	fail := false
	r := NewRegistry(nil, nil, DefaultLimits())
	r.Handle("Test/write", CapCore, func(ctx context.Context, c *Call) (any, error) {
		if err := store.DeferralFrom(c.SyncLater(ctx)).Add(func() error {
			order = append(order, "settle "+c.ID)
			if fail {
				return errors.New("disk gone")
			}
			return nil
		}); err != nil {
			t.Errorf("Add before the request settled: %v", err)
		}
		order = append(order, "write "+c.ID)
		return map[string]any{"written": true}, nil
	})
	r.Handle("Test/read", CapCore, func(ctx context.Context, c *Call) (any, error) {
		if store.DeferralFrom(ctx) != nil {
			t.Error("a call that did not ask for SyncLater runs under a Deferral")
		}
		order = append(order, "read "+c.ID)
		return map[string]any{"read": true}, nil
	})
	req := &Request{Using: []string{CapCore}, MethodCalls: []Invocation{
		{Name: "Test/write", Args: json.RawMessage(`{}`), CallID: "a"},
		{Name: "Test/read", Args: json.RawMessage(`{}`), CallID: "b"},
		{Name: "Test/write", Args: json.RawMessage(`{}`), CallID: "c"},
	}}
	resp := r.Execute(context.Background(), &Caller{}, req, "s")
	if got, want := order, []string{"write a", "read b", "write c", "settle a", "settle c"}; !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
	for _, m := range resp.MethodResponses {
		if m.Name == "error" {
			t.Errorf("call %s answered %s", m.CallID, m.Args)
		}
	}
	fail, order = true, nil
	resp = r.Execute(context.Background(), &Caller{}, req, "s")
	want := []string{`error {"type":"serverFail"}`, `Test/read {"read":true}`, `error {"type":"serverFail"}`}
	for i, m := range resp.MethodResponses {
		if got := m.Name + " " + string(m.Args); i >= len(want) || got != want[i] || m.CallID != req.MethodCalls[i].CallID {
			t.Errorf("response %d: %s (%s), want %s", i, got, m.CallID, want[min(i, len(want)-1)])
		}
	}
}
