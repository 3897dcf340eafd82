package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLI_DKIMGenerate(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := jmapd(t, "dkim", "generate", "Example.test", "--data", dir)
	if code != 0 || !strings.HasPrefix(out, "jmapd._domainkey.example.test\tTXT\t\"v=DKIM1; k=ed25519; p=") {
		t.Fatalf("ed25519: %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "dkim", "jmapd._domainkey.example.test.pem")); err != nil {
		t.Errorf("key file: %v", err)
	}
	code, out, errs = jmapd(t, "dkim", "--data", dir, "generate", "example.test", "--algo=rsa", "--selector", "s2", "--json")
	var rec map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil || rec["name"] != "s2._domainkey.example.test" ||
		!strings.HasPrefix(rec["value"], "v=DKIM1; k=rsa; p=") {
		t.Fatalf("rsa: %d %q %q", code, out, errs)
	}
	// The new key replaces the domain's old one.
	ents, _ := os.ReadDir(filepath.Join(dir, "dkim"))
	if len(ents) != 1 {
		t.Errorf("%d key files, want 1", len(ents))
	}
	for _, args := range [][]string{{"dkim", "generate"}, {"dkim", "generate", "x", "--algo", "dsa"}, {"dkim", "rotate", "example.test"}} {
		if code, _, errs := jmapd(t, append(args, "--data", dir)...); code == 0 || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%v: exit %d %q", args, code, errs)
		}
	}
}
