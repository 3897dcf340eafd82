package push

import "time"

// SetWebSocketTiming shortens the keepalive timing for a test and returns
// the function that restores it.
func SetWebSocketTiming(ping, read time.Duration) (restore func()) {
	p, r := wsPingInterval, wsReadTimeout
	wsPingInterval, wsReadTimeout = ping, read
	return func() { wsPingInterval, wsReadTimeout = p, r }
}
