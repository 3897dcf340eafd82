package jmap

import (
	"context"
	"encoding/json"
	"testing"
)

// A panic in a method is answered as serverFail for that call alone; the
// calls after it still run (DESIGN.md "Bad input", RFC 8620 §3.6.2).
func TestExecute_PanicIsServerFailForThatCall(t *testing.T) {
	r := NewRegistry(nil, nil, DefaultLimits())
	r.Handle("Test/panic", CapCore, func(context.Context, *Call) (any, error) { panic("broken invariant") })
	r.Handle("Test/ok", CapCore, func(context.Context, *Call) (any, error) { return map[string]any{"fine": true}, nil })
	req := &Request{Using: []string{CapCore}, MethodCalls: []Invocation{
		{Name: "Test/panic", Args: json.RawMessage(`{}`), CallID: "a"},
		{Name: "Test/ok", Args: json.RawMessage(`{}`), CallID: "b"},
	}}
	resp := r.Execute(context.Background(), &Caller{}, req, "s")
	if len(resp.MethodResponses) != 2 {
		t.Fatalf("responses: %+v", resp.MethodResponses)
	}
	first, second := resp.MethodResponses[0], resp.MethodResponses[1]
	if first.Name != "error" || first.CallID != "a" || string(first.Args) != `{"type":"serverFail"}` {
		t.Errorf("panicking call answered %s %s", first.Name, first.Args)
	}
	if second.Name != "Test/ok" || string(second.Args) != `{"fine":true}` {
		t.Errorf("next call answered %s %s", second.Name, second.Args)
	}
}
