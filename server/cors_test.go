package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
)

// A web client served from another origin may use the API when its origin
// is allowed: the preflight is answered without credentials, and the
// answers carry the headers that let the page read them. Other origins
// get nothing that would let their page read an answer.
func TestCORS(t *testing.T) {
	t.Parallel()
	const webmail = "https://webmail.example.test"
	srv := jmaptest.Start(t, func(c *config.Config) { c.Push.AllowedOrigins = []string{webmail} })
	alice := srv.NewUser(t, "alice@example.test")

	preflight := func(origin, method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, srv.URL()+path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := srv.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, path := range []string{"/.well-known/jmap", "/jmap/api", "/jmap/upload/" + alice.Account + "/", "/jmap/ticket"} {
		resp := preflight(webmail, http.MethodPost, path)
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != webmail ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") || h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight of %s: %s %v", path, resp.Status, h)
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight of %s lends the browser's credentials: %v", path, h)
		}
	}
	if resp := preflight("https://evil.example", http.MethodPost, "/jmap/api"); resp.StatusCode != http.StatusForbidden ||
		resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %s %v", resp.Status, resp.Header)
	}
	if resp := preflight(webmail, http.MethodDelete, "/jmap/api"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("preflight of DELETE: %s, want 403", resp.Status)
	}

	api := func(origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/jmap/api",
			strings.NewReader(`{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"x":1},"0"]]}`))
		req.SetBasicAuth(alice.Email, alice.Password)
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := srv.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := api(webmail)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != webmail ||
		!strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Errorf("API call from the allowed origin: %s %v", resp.Status, resp.Header)
	}
	// The server's own origin needs no configuration.
	if resp := api(srv.URL()); resp.Header.Get("Access-Control-Allow-Origin") != srv.URL() {
		t.Errorf("API call from the server's own origin: %v", resp.Header)
	}
	for _, o := range []string{"https://evil.example", ""} {
		if resp := api(o); resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("API call from %q: %s, ACAO %q", o, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	// A download's name is readable by the page.
	if resp := api(webmail); !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Content-Disposition") {
		t.Errorf("exposed headers: %q", resp.Header.Get("Access-Control-Expose-Headers"))
	}
}
