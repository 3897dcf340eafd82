package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/internal/delivery"
	"github.com/jmapd/jmapd/methods"
	"github.com/jmapd/jmapd/store"
)

// newAgent builds the delivery agent the configuration describes.
func newAgent(cfg config.Config, st store.Store, log zerolog.Logger) (*delivery.Agent, error) {
	opt := delivery.Options{Store: st, HostName: cfg.Relay.HelloName, DKIMDir: delivery.DKIMDir(cfg.Data),
		Log: log.With().Str("component", "delivery").Logger()}
	if r := cfg.Relay; r.Host != "" {
		rel := &delivery.Relay{Addr: net.JoinHostPort(r.Host, strconv.Itoa(r.Port)), Username: r.Username,
			Password: r.Password, Insecure: r.Insecure, Timeout: r.Timeout.Duration, RetryFor: r.RetryFor.Duration,
			RetryFirst: r.RetryFirst.Duration}
		if r.CAFile != "" {
			pem, err := os.ReadFile(r.CAFile)
			if err != nil {
				return nil, fmt.Errorf("relay.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("relay.ca_file: no certificates in %s", r.CAFile)
			}
			rel.TLS = &tls.Config{RootCAs: pool, ServerName: r.Host, MinVersion: tls.VersionTLS12}
		}
		opt.Relay = rel
	}
	return delivery.New(opt), nil
}

func sendOptions(cfg config.Config, agent *delivery.Agent) *methods.SendOptions {
	s := cfg.Submission
	return &methods.SendOptions{Agent: agent, MaxDelayedSend: s.MaxDelayedSend.Duration, MaxRecipients: s.MaxRecipients,
		MaxSize: s.MaxSize, MaxPerHour: s.MaxPerHour, VacationPeriod: s.VacationPeriod.Duration}
}
