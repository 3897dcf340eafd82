package methods

import (
	"context"
	"encoding/json"

	"github.com/jmapd/jmapd/jmap"
)

// registerCore adds Core/echo (RFC 8620 §4).
func registerCore(r *jmap.Registry) {
	r.Handle("Core/echo", jmap.CapCore, coreEcho)
}

// coreEcho answers with the arguments it was given.
func coreEcho(_ context.Context, c *jmap.Call) (any, error) {
	return json.RawMessage(c.Args), nil
}
