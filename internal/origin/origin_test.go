package origin

import "testing"

func TestAllows(t *testing.T) {
	l := New("https://jmap.example.test/base", []string{"https://Mail.Example.test/", "http://localhost:8080"})
	for o, want := range map[string]bool{
		"https://jmap.example.test":  true, // the server's own
		"https://JMAP.example.test/": true,
		"https://mail.example.test":  true,
		"http://localhost:8080":      true,
		"http://mail.example.test":   false, // another scheme is another origin
		"https://evil.example":       false,
		"null":                       false,
		"":                           false,
	} {
		if got := l.Allows(o); got != want {
			t.Errorf("Allows(%q) = %v, want %v", o, got, want)
		}
	}
	any := New("https://jmap.example.test", []string{"*"})
	if !any.Allows("https://evil.example") || !any.Allows("null") {
		t.Error(`"*" does not allow every origin`)
	}
	if (&List{}).Allows("https://jmap.example.test") {
		t.Error("the zero List allows an origin")
	}
}
