package server_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/admin"
	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/server"
)

// syncBuffer is a log sink written by many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The request log never holds the query string of the push endpoints,
// where tickets and access tokens travel.
func TestLog_NoQueryStrings(t *testing.T) {
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	var logs syncBuffer
	srv, err := server.New(context.Background(), server.Options{Config: cfg, Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		<-done
	}()
	if err := admin.Run(context.Background(), srv.Store(), []string{"user", "add", "alice@example.test", "--password", "pw"},
		strings.NewReader(""), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		"/jmap/eventsource?types=*&closeafter=state&ping=0&access_token=SECRET-TOKEN-1",
		"/jmap/eventsource?types=*&closeafter=state&ping=0&ticket=SECRET-TICKET-2",
		"/jmap/ws?access_token=SECRET-TOKEN-3",
		"/jmap/ws?ticket=SECRET-TICKET-4",
	} {
		resp, err := http.Get(srv.URL() + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", u, resp.StatusCode)
		}
	}
	out := logs.String()
	if !strings.Contains(out, `"path":"eventsource"`) || !strings.Contains(out, `"path":"websocket"`) {
		t.Fatalf("the requests were not logged: %s", out)
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("the log holds a secret from a query string: %s", out)
	}
}
