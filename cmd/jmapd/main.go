// Command jmapd is a JMAP mail server (RFC 8620, RFC 8621) on an embedded
// Badger store. "jmapd serve" runs the server; the other subcommands
// administer principals, through a running server's admin socket or, when
// none runs, on the data directory itself.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/internal/admin"
	"github.com/jmapd/jmapd/internal/config"
	"github.com/jmapd/jmapd/server"
	"github.com/jmapd/jmapd/store/badger"
)

const usage = `usage: jmapd COMMAND [ARGS] [--data DIR]

  serve   [--data DIR] [--listen ADDR] [--base-url URL] [--config FILE] [--demo]
          [--tls-cert FILE --tls-key FILE]
  user    add EMAIL [--name NAME] [--password PW | --password-stdin]
  user    passwd EMAIL [--password PW | --password-stdin]
  user    list | remove EMAIL
  group   add EMAIL [--name NAME] [--member EMAIL]... [--archive] [--company]
  group   member add|remove GROUP_EMAIL MEMBER_EMAIL
  shared  add EMAIL [--name NAME]
  share   ACCOUNT_EMAIL --with PRINCIPAL_EMAIL --rights read|readAdvanced|write|manage|none
          [--mailbox NAME]
  token   create EMAIL [--name NAME] | list EMAIL | revoke TOKEN_ID
  dkim    generate DOMAIN [--algo ed25519|rsa] [--selector NAME]

Admin commands talk to a running server through DIR/admin.sock, or open
DIR themselves when no server runs. Default DIR: ./data.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "serve" {
		if err := serve(args[1:], stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "jmapd: %v\n", err)
			return 1
		}
		return 0
	}
	if args[0] == "dkim" {
		if err := dkimCommand(args[1:], stdout); err != nil {
			fmt.Fprintf(stderr, "jmapd: %v\n", err)
			return 1
		}
		return 0
	}
	if err := adminCommand(args, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "jmapd: %v\n", err)
		return 1
	}
	return 0
}

// dataDir finds --data DIR (or --data=DIR) anywhere in args.
func dataDir(args []string) string {
	for i, a := range args {
		if a == "--data" || a == "-data" {
			if i+1 < len(args) {
				return args[i+1]
			}
		}
		if v, ok := strings.CutPrefix(a, "--data="); ok {
			return v
		}
	}
	return config.Default().Data
}

func adminCommand(args []string, stdin io.Reader, stdout io.Writer) error {
	ctx := context.Background()
	dir := dataDir(args)
	err := admin.Remote(ctx, admin.SocketPath(dir), args, stdin, stdout)
	if !errors.Is(err, admin.ErrNoServer) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	st, err := badger.Open(badger.Options{Dir: dir})
	if err != nil {
		return fmt.Errorf("%w (is another process using %s?)", err, dir)
	}
	err = admin.Run(admin.WithSharer(ctx, server.Share), st, args, stdin, stdout)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close store: %w", cerr)
	}
	return err
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newLogger(cfg config.Config, stderr io.Writer) zerolog.Logger {
	var w io.Writer = stderr
	f, isFile := stderr.(*os.File)
	if cfg.LogFormat == "console" || (cfg.LogFormat == "auto" && isFile && isTerminal(f)) {
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}
	}
	lvl, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "TOML configuration `file`")
	data := fs.String("data", "", "data `directory` (default ./data)")
	listen := fs.String("listen", "", "`host:port` to listen on (default 127.0.0.1:8080)")
	baseURL := fs.String("base-url", "", "public `URL` the session advertises")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `file` (PEM)")
	tlsKey := fs.String("tls-key", "", "TLS key `file` (PEM)")
	demo := fs.Bool("demo", false, "provision demo users, a shared mailbox and a group on a new data directory")
	testTypes := fs.Bool("test-types", false, "also serve the test-only Note type (for conformance tests)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Arg(0))
	}
	cfg := config.Default()
	if *cfgFile != "" {
		var err error
		if cfg, err = config.Load(*cfgFile); err != nil {
			return err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "data":
			cfg.Data = *data
		case "listen":
			cfg.Listen = *listen
		case "base-url":
			cfg.BaseURL = *baseURL
		case "tls-cert":
			cfg.TLSCert = *tlsCert
		case "tls-key":
			cfg.TLSKey = *tlsKey
		}
	})
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && cfg.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimitMB << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	srv, err := server.New(ctx, server.Options{Config: cfg, Log: log, TestTypes: *testTypes})
	if err != nil {
		return err
	}
	if host, _, err := net.SplitHostPort(srv.Addr()); err == nil && cfg.TLSCert == "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			log.Warn().Str("listen", srv.Addr()).Msg("listening on a non-loopback address without TLS: put a TLS proxy in front or pass --tls-cert and --tls-key")
		}
	}
	if err := announce(ctx, srv, cfg.Data, *demo, stdout); err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	log.Info().Str("url", srv.URL()).Str("data", cfg.Data).Msg("jmapd serving")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	select {
	case err := <-errc:
		_ = srv.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down: draining requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info().Msg("stopped")
	return nil
}

// demoLogins is the file in the data directory that keeps the demo logins,
// so a second `make run` can show them again.
const demoLogins = "demo-logins.txt"

// announce prints how to reach the server and, with --demo, provisions and
// prints the demo logins.
func announce(ctx context.Context, srv *server.Server, dir string, demo bool, stdout io.Writer) error {
	fmt.Fprintf(stdout, "jmapd is running.\n  session URL: %s/.well-known/jmap\n  data:        %s\n", srv.URL(), dir)
	if !demo {
		fmt.Fprintf(stdout, "Add a user with:\n  jmapd user add you@example.com --data %s\n", dir)
		return nil
	}
	path := filepath.Join(dir, demoLogins)
	var buf bytes.Buffer
	created, err := admin.Demo(ctx, srv.Store(), &buf)
	if err != nil {
		return fmt.Errorf("provision demo data: %w", err)
	}
	if created {
		if err := seedDemoMail(ctx, srv.Store()); err != nil {
			return fmt.Errorf("provision demo mail: %w", err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			return fmt.Errorf("save demo logins: %w", err)
		}
	} else if b, err := os.ReadFile(path); err == nil {
		buf.Reset()
		buf.Write(b)
	} else {
		fmt.Fprintf(stdout, "The data directory already has principals; demo data was not added.\n")
		return nil
	}
	fmt.Fprintf(stdout, "Demo logins (HTTP Basic, user = email address):\n")
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if email, pw, ok := strings.Cut(line, "\t"); ok {
			fmt.Fprintf(stdout, "  %-22s password: %s\n", email, pw)
		}
	}
	fmt.Fprintf(stdout, "Try:\n  curl -u %s %s/.well-known/jmap\n", firstLogin(buf.String()), srv.URL())
	return nil
}

func firstLogin(logins string) string {
	line, _, _ := strings.Cut(logins, "\n")
	email, pw, _ := strings.Cut(line, "\t")
	return email + ":" + pw
}
