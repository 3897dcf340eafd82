package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/jmapd/jmapd/store"
)

// The admin socket protocol, version 1. A client connects and sends one
// JSON line, the request; the server runs the command and answers one JSON
// line, the reply, then closes the connection:
//
//	→ {"v":1,"args":["user","add","a@b.c","--password-stdin"],"stdin":"secret\n"}
//	← {"v":1,"out":"","error":""}
//
// "stdin" carries the client's standard input, read only when the command
// line has --password-stdin. A server answers a request of another version
// with an error reply in its own version; a client refuses a reply of
// another version.
const protocolVersion = 1

// SocketName is the file name of the admin socket in the data directory.
const SocketName = "admin.sock"

// SocketPath returns the path of the admin socket in the data directory dir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// ErrNoServer is returned by Remote when no server listens on the admin
// socket: the socket file does not exist, or connecting to it is refused
// (a file left by a server that stopped). The caller then opens the store
// itself.
var ErrNoServer = errors.New("admin: no server on the admin socket")

type request struct {
	V     int      `json:"v"`
	Args  []string `json:"args"`
	Stdin string   `json:"stdin,omitempty"`
}

type reply struct {
	V     int    `json:"v"`
	Out   string `json:"out"`
	Error string `json:"error"`
}

const (
	maxRequest = 1 << 20  // bytes of a request line
	maxReply   = 64 << 20 // bytes of a reply line
	maxStdin   = 64 << 10 // bytes of stdin a client forwards
	ioTimeout  = 10 * time.Second
)

// Serve accepts admin connections on the unix socket at path until ctx
// ends, then waits for the commands under way and returns nil. The socket
// file is created with mode 0600 after an old socket file nothing listens
// on is removed; on Linux a peer must also run as the server's user or as
// root. Each connection carries one command. onChange, when not nil, is
// called after every command that changed something and before its reply
// is sent, so that the server flushes its caches before the client goes on.
//
// Only the command's name is logged, never its arguments: they hold
// passwords and addresses.
func Serve(ctx context.Context, path string, st store.Store, log zerolog.Logger, onChange func()) error {
	l, err := Listen(ctx, path)
	if err != nil {
		return err
	}
	return ServeListener(ctx, l, st, log, onChange)
}

// Listen creates the admin socket at path, mode 0600, after removing an old
// socket file nothing listens on. A server calls it before it announces
// itself, so that admin commands never miss a running server.
func Listen(ctx context.Context, path string) (net.Listener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return l, nil
}

// ServeListener is Serve on a listener made by Listen; it closes l.
func ServeListener(ctx context.Context, l net.Listener, st store.Store, log zerolog.Logger, onChange func()) error {
	closeListener := sync.OnceValue(l.Close)
	defer func() {
		if err := closeListener(); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Warn().Err(err).Msg("close admin socket")
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = closeListener() }) // the deferred call reports its error
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	backoff := time.Duration(0)
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("admin socket: %w", err)
			}
			// Out of file descriptors and the like: wait and go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn().Err(err).Msg("admin socket accept")
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			continue
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(ctx, conn.(*net.UnixConn), st, log, onChange)
		}()
	}
}

// removeStale removes an admin socket file that nothing listens on, and
// refuses to touch one that is live or a file that is not a socket.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("admin socket %s: the file exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		if err := c.Close(); err != nil {
			return fmt.Errorf("admin socket %s: %w", path, err)
		}
		return fmt.Errorf("admin socket %s: another server is listening on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("admin socket: remove stale socket: %w", err)
	}
	return nil
}

// serveConn reads one request, runs it and writes the reply.
func serveConn(ctx context.Context, conn *net.UnixConn, st store.Store, log zerolog.Logger, onChange func()) {
	defer func() {
		if err := conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Debug().Err(err).Msg("close admin connection")
		}
	}()
	// Ending ctx unblocks a connection waiting on its client.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	rep := reply{V: protocolVersion}
	if err := checkPeer(conn); err != nil {
		log.Warn().Err(err).Msg("admin connection refused")
		rep.Error = "admin: permission denied"
		writeReply(conn, rep, log)
		return
	}
	if err := conn.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		log.Warn().Err(err).Msg("admin connection")
		return
	}
	line, err := readLine(conn, maxRequest)
	if err != nil {
		log.Warn().Err(err).Msg("admin connection: read request")
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		rep.Error = "admin: malformed request"
		writeReply(conn, rep, log)
		return
	}
	if req.V != protocolVersion {
		rep.Error = fmt.Sprintf("admin: protocol version %d is not supported; this server speaks version %d", req.V, protocolVersion)
		writeReply(conn, rep, log)
		return
	}

	start := time.Now()
	var out bytes.Buffer
	name, changed, err := run(ctx, st, req.Args, strings.NewReader(req.Stdin), &out)
	if name == "" {
		name = "unknown"
	}
	var ue *usageError
	switch {
	case err == nil:
		log.Info().Str("command", name).Str("status", "ok").Dur("dur_ms", time.Since(start)).Msg("admin command")
	case errors.As(err, &ue):
		// The message may quote what was typed: a misplaced password.
		log.Info().Str("command", name).Str("status", "refused").Dur("dur_ms", time.Since(start)).Msg("admin command")
	default:
		log.Error().Err(err).Str("command", name).Str("status", "error").Dur("dur_ms", time.Since(start)).Msg("admin command")
	}
	if changed && onChange != nil {
		onChange()
	}
	rep.Out = out.String()
	if err != nil {
		rep.Error = err.Error()
	}
	writeReply(conn, rep, log)
}

func writeReply(conn net.Conn, rep reply, log zerolog.Logger) {
	b, err := json.Marshal(rep)
	if err != nil {
		log.Error().Err(err).Msg("admin connection: encode reply")
		return
	}
	if err := conn.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		log.Warn().Err(err).Msg("admin connection")
		return
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		log.Warn().Err(err).Msg("admin connection: write reply")
	}
}

// readLine reads one newline-terminated line of at most max bytes.
func readLine(r io.Reader, max int64) ([]byte, error) {
	line, err := bufio.NewReader(io.LimitReader(r, max)).ReadBytes('\n')
	if errors.Is(err, io.EOF) && int64(len(line)) >= max {
		return nil, fmt.Errorf("line longer than %d bytes", max)
	}
	if err != nil {
		return nil, err
	}
	return line, nil
}

// Remote sends one command to the server listening on the admin socket at
// path and copies the command's output to out. It reads stdin, and sends
// it along, only when args hold --password-stdin, and only once connected,
// so that after ErrNoServer the caller can still give stdin to Run. An
// error the command failed with comes back as the server worded it.
func Remote(ctx context.Context, path string, args []string, stdin io.Reader, out io.Writer) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return ErrNoServer
		}
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	defer func() { _ = conn.Close() }() // the reply is read, or the error reported, already
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	req := request{V: protocolVersion, Args: args}
	if wantsStdin(args) {
		if stdin == nil {
			return errors.New("admin: --password-stdin without standard input")
		}
		b, err := io.ReadAll(io.LimitReader(stdin, maxStdin))
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		req.Stdin = string(b)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("admin: encode request: %w", err)
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return remoteErr(ctx, path, "send command", err)
	}
	line, err := readLine(conn, maxReply)
	if err != nil {
		return remoteErr(ctx, path, "read reply", err)
	}
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return fmt.Errorf("admin socket %s: malformed reply", path)
	}
	if rep.V != protocolVersion {
		return fmt.Errorf("admin socket %s speaks protocol version %d; this jmapd speaks version %d", path, rep.V, protocolVersion)
	}
	if _, err := io.WriteString(out, rep.Out); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	return nil
}

func remoteErr(ctx context.Context, path, doing string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("admin socket %s: %s: %w", path, doing, err)
}

// wantsStdin reports whether a command line asks for --password-stdin.
func wantsStdin(args []string) bool {
	_, flags, err := words(args)
	if err != nil {
		return false // the server answers the mistake
	}
	for _, f := range flags {
		if f.name == "password-stdin" {
			return true
		}
	}
	return false
}
