package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/internal/delivery"
	"github.com/jmapd/jmapd/internal/lmtp"
)

// listenLMTP opens the LMTP listener of [lmtp] listen: a host:port, or
// "unix:" and a socket path (a stale socket is replaced). It warns when
// the address is not loopback: LMTP has no authentication.
func listenLMTP(addr string, log zerolog.Logger) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("lmtp.listen: %w", err)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("lmtp.listen: %w", err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lmtp.listen: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		log.Warn().Str("addr", ln.Addr().String()).Msg("LMTP listens beyond loopback: anyone who reaches it can deliver mail to every user")
	}
	return ln, nil
}

// startLMTP starts receiving mail over LMTP when [lmtp] listen is set.
func (s *Server) startLMTP(cfg config.Config, agent *delivery.Agent, log zerolog.Logger) error {
	if cfg.LMTP.Listen == "" {
		return nil
	}
	ln, err := listenLMTP(cfg.LMTP.Listen, log)
	if err != nil {
		return err
	}
	s.lmtpAddr = ln.Addr()
	s.lmtp = lmtp.New(lmtp.Options{Store: s.st, Agent: agent, MaxSize: cfg.LMTP.MaxSize,
		MaxRecipients: cfg.LMTP.MaxRecipients, Log: log.With().Str("component", "lmtp").Logger()})
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := s.lmtp.Serve(ln); err != nil {
			log.Error().Err(err).Msg("LMTP listener stopped")
		}
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("receiving mail over LMTP")
	return nil
}

// LMTPAddr is the address the LMTP listener listens on; nil when there is
// none.
func (s *Server) LMTPAddr() net.Addr { return s.lmtpAddr }
