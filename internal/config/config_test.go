package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jmapd.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func problemKeys(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	var keys []string
	for _, p := range ve.Problems {
		keys = append(keys, p.Key)
	}
	return keys
}

func TestDefault_Validates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestDefault_Values(t *testing.T) {
	c := Default()
	if c.Data != "./data" || c.Listen != "127.0.0.1:8080" || c.BaseURL != "" ||
		c.LogLevel != "info" || c.LogFormat != "auto" {
		t.Errorf("top-level defaults: %+v", c)
	}
	want := Limits{50000000, 4, 10000000, 32, 64, 1000, 1000}
	if c.Limits != want {
		t.Errorf("Limits = %+v, want %+v", c.Limits, want)
	}
	if c.Auth.CacheTTL.Duration != 2*time.Minute || c.Auth.MaxFailures != 10 ||
		c.Auth.FailureWindow.Duration != time.Minute {
		t.Errorf("Auth = %+v", c.Auth)
	}
	if c.Blobs.Grace.Duration != 24*time.Hour {
		t.Errorf("Blobs.Grace = %v", c.Blobs.Grace)
	}
	if got := c.URL(); got != "http://127.0.0.1:8080" {
		t.Errorf("URL() = %q", got)
	}
}

func TestLoad_EmptyFileGivesDefaults(t *testing.T) {
	cfg, err := Load(writeConfig(t, "# nothing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("Load(empty) = %+v, want Default()", cfg)
	}
}

func TestLoad_OverridesDefaults(t *testing.T) {
	cfg, err := Load(writeConfig(t, `
data = "/var/lib/jmapd"
listen = "[::1]:8443"
tls_cert = "cert.pem"
tls_key = "key.pem"
log_format = "json"

[limits]
max_size_upload = 1000
max_objects_in_get = 5

[auth]
cache_ttl = "0s"
failure_window = "90s"

[blobs]
grace = "2h"
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Data != "/var/lib/jmapd" || cfg.LogFormat != "json" || cfg.LogLevel != "info" {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.Limits.MaxSizeUpload != 1000 || cfg.Limits.MaxObjectsInGet != 5 || cfg.Limits.MaxCallsInRequest != 64 {
		t.Errorf("Limits = %+v", cfg.Limits)
	}
	if cfg.Auth.CacheTTL.Duration != 0 || cfg.Auth.FailureWindow.Duration != 90*time.Second || cfg.Auth.MaxFailures != 10 {
		t.Errorf("Auth = %+v", cfg.Auth)
	}
	if cfg.Blobs.Grace.Duration != 2*time.Hour {
		t.Errorf("Grace = %v", cfg.Blobs.Grace)
	}
	if got := cfg.URL(); got != "https://[::1]:8443" {
		t.Errorf("URL() = %q", got)
	}
}

func TestLoad_UnknownKeyIsNamed(t *testing.T) {
	_, err := Load(writeConfig(t, `
listen = "127.0.0.1:9000"
lissten = "x"

[limits]
max_size_uplaod = 5

[nosuch]
a = 1
`))
	if err == nil {
		t.Fatal("Load accepted unknown keys")
	}
	keys := problemKeys(t, err)
	for _, k := range []string{"lissten", "limits.max_size_uplaod", "nosuch"} {
		found := false
		for _, got := range keys {
			if got == k || strings.HasPrefix(got, k+".") {
				found = true
			}
		}
		if !found {
			t.Errorf("unknown key %q not reported; problems: %v", k, keys)
		}
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not name %q", err, k)
		}
	}
}

func TestLoad_BadValuesAreAllListed(t *testing.T) {
	_, err := Load(writeConfig(t, `
data = ""
listen = "localhost"
base_url = "ftp://example.test"
tls_cert = "cert.pem"
log_level = "loud"
log_format = "xml"

[limits]
max_size_upload = 0
max_concurrent_upload = -1
max_size_request = 0
max_concurrent_requests = 0
max_calls_in_request = 0
max_objects_in_get = 0
max_objects_in_set = 0

[auth]
cache_ttl = "soon"
max_failures = 0
failure_window = 60

[blobs]
grace = "30m"
`))
	if err == nil {
		t.Fatal("Load accepted bad values")
	}
	want := []string{
		"data", "listen", "base_url", "tls_key", "log_level", "log_format",
		"limits.max_size_upload", "limits.max_concurrent_upload", "limits.max_size_request",
		"limits.max_concurrent_requests", "limits.max_calls_in_request",
		"limits.max_objects_in_get", "limits.max_objects_in_set",
		"auth.cache_ttl", "auth.max_failures", "auth.failure_window", "blobs.grace",
	}
	if got := problemKeys(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %v\nwant       %v", got, want)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // problem keys; nil: valid
	}{
		{"tls both", func(c *Config) { c.TLSCert, c.TLSKey = "c", "k" }, nil},
		{"tls key alone", func(c *Config) { c.TLSKey = "k" }, []string{"tls_cert"}},
		{"tls cert alone", func(c *Config) { c.TLSCert = "c" }, []string{"tls_key"}},
		{"wildcard listen needs base url", func(c *Config) { c.Listen = ":8080" }, []string{"base_url"}},
		{"wildcard listen with base url", func(c *Config) {
			c.Listen, c.BaseURL = "0.0.0.0:8080", "https://mail.example.test/jmap"
		}, nil},
		{"port out of range", func(c *Config) { c.Listen = "127.0.0.1:70000" }, []string{"listen"}},
		{"base url with query", func(c *Config) { c.BaseURL = "https://x.test/?a=b" }, []string{"base_url"}},
		{"base url without host", func(c *Config) { c.BaseURL = "https:///x" }, []string{"base_url"}},
		{"negative cache ttl", func(c *Config) { c.Auth.CacheTTL.Duration = -time.Second }, []string{"auth.cache_ttl"}},
		{"grace one hour", func(c *Config) { c.Blobs.Grace.Duration = time.Hour }, nil},
		{"origins", func(c *Config) { c.Push.AllowedOrigins = []string{"https://a.test", "http://b.test:8080", "*"} }, nil},
		{"origin with path", func(c *Config) { c.Push.AllowedOrigins = []string{"https://a.test/app"} }, []string{"push.allowed_origins"}},
		{"origin not a url", func(c *Config) { c.Push.AllowedOrigins = []string{"a.test"} }, []string{"push.allowed_origins"}},
		{"no push connections", func(c *Config) { c.Push.MaxConnectionsPerUser = 0 }, []string{"push.max_connections_per_user"}},
		{"negative memory limit", func(c *Config) { c.MemoryLimitMB = -1 }, []string{"memory_limit_mb"}},
		{"negative mapped budget", func(c *Config) { c.MappedBudgetMB = -1 }, []string{"mapped_budget_mb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if got := problemKeys(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestURL_BaseURLWins(t *testing.T) {
	c := Default()
	c.BaseURL = "https://mail.example.test/jmap/"
	if got := c.URL(); got != "https://mail.example.test/jmap" {
		t.Errorf("URL() = %q", got)
	}
}

func TestLoad_SyntaxErrorNamesLine(t *testing.T) {
	_, err := Load(writeConfig(t, "listen = \n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("Load = %v, want an error naming line 1", err)
	}
}

func TestLoad_MissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestDuration_TextRoundTrip(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("90s")); err != nil {
		t.Fatal(err)
	}
	b, err := d.MarshalText()
	if err != nil || string(b) != "1m30s" {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
}
