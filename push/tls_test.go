package push_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/jmaptest"
	"github.com/jmapd/jmapd/push"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns the pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jmapd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// With TLS the session advertises wss:// (RFC 8887 §3) and both channels
// work: the WebSocket over HTTP/1.1, the EventSource over HTTP/2, where
// it streams through the ResponseWriter.
func TestPush_OverTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	srv := jmaptest.Start(t, func(c *config.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	tlsConf := &tls.Config{RootCAs: pool}
	tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	srv.HTTP = &http.Client{Transport: tr}
	alice := srv.NewUser(t, "alice@example.test")

	u := wsURL(t, alice)
	if !strings.HasPrefix(u, "wss://127.0.0.1:") || !strings.HasSuffix(u, push.PathWebSocket) {
		t.Fatalf("WebSocket url %s, want wss://", u)
	}
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{"jmap"}, TLSClientConfig: &tls.Config{RootCAs: pool}}).Dial(u, basic(alice))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send(t, conn, map[string]any{"@type": "WebSocketPushEnable", "dataTypes": []string{"Note"}})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/jmap/eventsource?types=Note&closeafter=state&ping=0", nil)
	req.SetBasicAuth(alice.Email, alice.Password)
	resp, err := srv.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("EventSource: %s %s %v", resp.Proto, resp.Status, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("opening comment %q %v", line, err)
	}
	send(t, conn, echoRequest("sync"))
	readJSON(t, conn, 10*time.Second)
	state := createNote(t, alice)

	m := readJSON(t, conn, 10*time.Second)
	if m["changed"].(map[string]any)[alice.Account].(map[string]any)["Note"] != state {
		t.Errorf("wss push %v, want Note %s", m, state)
	}
	var data string
	for data == "" {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("EventSource ended early: %v", err)
		}
		if strings.HasPrefix(line, "data: ") {
			data = line
		}
	}
	if !strings.Contains(data, `"Note":"`+state+`"`) {
		t.Errorf("EventSource over HTTP/2: %s, want Note %s", data, state)
	}
	// closeafter=state: the stream ends.
	for {
		if _, err := br.ReadString('\n'); err != nil {
			break
		}
	}
}
