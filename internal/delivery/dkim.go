package delivery

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/jmapd/jmapd/internal/mime"
)

// DKIM keys live in DIR/dkim, one file per domain:
// <selector>._domainkey.<domain>.pem, holding a PKCS #8 private key.
const keySuffix = ".pem"

// keyring holds the DKIM keys of a directory, read again when the
// directory changes, so that a key added by the admin command is used at
// once.
type keyring struct {
	dir  string
	mu   sync.Mutex
	mod  time.Time
	keys map[string]dkimKey // by domain
}

type dkimKey struct {
	selector string
	signer   crypto.Signer
}

// DKIMDir is where the keys of data directory data live.
func DKIMDir(data string) string { return filepath.Join(data, "dkim") }

// refresh reads the keys again when the directory changed.
func (k *keyring) refresh() {
	fi, err := os.Stat(k.dir)
	if err != nil {
		k.keys = nil
		return
	}
	if k.keys == nil || !fi.ModTime().Equal(k.mod) {
		k.keys, k.mod = loadKeys(k.dir), fi.ModTime()
	}
}

// any reports whether there is a key at all.
func (k *keyring) any() bool {
	if k.dir == "" {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refresh()
	return len(k.keys) > 0
}

func (k *keyring) lookup(domain string) (dkimKey, bool) {
	if k.dir == "" {
		return dkimKey{}, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refresh()
	key, ok := k.keys[strings.ToLower(domain)]
	return key, ok
}

// loadKeys reads every key file of dir; a file that does not parse is
// skipped.
func loadKeys(dir string) map[string]dkimKey {
	out := map[string]dkimKey{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		name := e.Name()
		sel, domain, ok := strings.Cut(strings.TrimSuffix(name, keySuffix), "._domainkey.")
		if !ok || !strings.HasSuffix(name, keySuffix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		s, err := parseKey(b)
		if err != nil {
			continue
		}
		out[strings.ToLower(domain)] = dkimKey{selector: sel, signer: s}
	}
	return out
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("delivery: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("delivery: not a signing key")
	}
	return s, nil
}

// signedHeaders are the fields a signature covers when present (RFC 6376
// §5.4.1).
var signedHeaders = []string{"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From",
	"Resent-To", "Resent-Cc", "In-Reply-To", "References", "List-Id", "List-Help", "List-Unsubscribe",
	"List-Subscribe", "List-Post", "List-Owner", "List-Archive", "Message-ID", "Content-Type",
	"Content-Transfer-Encoding", "MIME-Version", "Sender", "Auto-Submitted"}

// Sign returns msg with a DKIM-Signature when a key is configured for the
// domain of its From address, and msg as it is otherwise.
func (a *Agent) Sign(msg []byte) []byte {
	if !a.keys.any() {
		return msg
	}
	m, err := mime.Parse(msg)
	if err != nil {
		return msg
	}
	from := mime.Values(m.Headers, "From")
	if len(from) == 0 {
		return msg
	}
	addrs := mime.AsAddresses(from[len(from)-1])
	if len(addrs) == 0 {
		return msg
	}
	addr, err := ParseAddress(addrs[0].Email)
	if err != nil {
		return msg
	}
	key, ok := a.keys.lookup(Domain(addr))
	if !ok {
		return msg
	}
	var present []string
	for _, h := range signedHeaders {
		if len(mime.Values(m.Headers, h)) > 0 {
			present = append(present, h)
		}
	}
	var out bytes.Buffer
	err = dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: Domain(addr), Selector: key.selector, Signer: key.signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: present,
	})
	if err != nil {
		a.log.Error().Err(err).Msg("dkim: signing failed; sending unsigned")
		return msg
	}
	return out.Bytes()
}

// GenerateKey makes a DKIM key ("ed25519" or "rsa", 2048 bits) for domain
// under selector, writes it into dir, and returns the name and text of the
// DNS TXT record that publishes its public half (RFC 6376 §3.6.1).
func GenerateKey(dir, domain, selector, algo string) (name, txt string, err error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if !validDomain(domain) || domain[0] == '[' || !strings.Contains(domain, ".") {
		return "", "", fmt.Errorf("%q is not a domain name", domain)
	}
	if !validDomain(selector) || selector[0] == '[' {
		return "", "", fmt.Errorf("%q is not a selector", selector)
	}
	var priv crypto.Signer
	var pub []byte
	var k string
	switch algo {
	case "ed25519":
		p, s, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", "", err
		}
		priv, pub, k = s, p, "ed25519" // RFC 8463 §4.2: the raw key
	case "rsa":
		s, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", "", err
		}
		der, err := x509.MarshalPKIXPublicKey(&s.PublicKey)
		if err != nil {
			return "", "", err
		}
		priv, pub, k = s, der, "rsa"
	default:
		return "", "", fmt.Errorf("unknown algorithm %q: use ed25519 or rsa", algo)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}
	// One key per domain: an older key of the domain goes.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), "._domainkey."+domain+keySuffix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return "", "", err
			}
		}
	}
	file := filepath.Join(dir, selector+"._domainkey."+domain+keySuffix)
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return "", "", fmt.Errorf("write key: %w", err)
	}
	name = selector + "._domainkey." + domain
	txt = fmt.Sprintf("v=DKIM1; k=%s; p=%s", k, base64.StdEncoding.EncodeToString(pub))
	return name, txt, nil
}
