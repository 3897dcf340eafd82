package push

import (
	"testing"
	"time"
)

// SetWebSocketTiming shortens the keepalive timing for a test. Call it
// before starting the server: the old timing comes back in a cleanup that
// runs after the server's.
func SetWebSocketTiming(t testing.TB, ping, read time.Duration) {
	p, r := wsPingInterval, wsReadTimeout
	wsPingInterval, wsReadTimeout = ping, read
	t.Cleanup(func() { wsPingInterval, wsReadTimeout = p, r })
}

// SetRetryBase shortens the first Web Push retry wait for a test, as
// SetWebSocketTiming does.
func SetRetryBase(t testing.TB, d time.Duration) {
	old := retryBase
	retryBase = d
	t.Cleanup(func() { retryBase = old })
}
