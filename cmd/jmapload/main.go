// Command jmapload loads a JMAP server the way mail clients do and reports
// what it measured. It speaks only JMAP over HTTP, EventSource and
// WebSocket and discovers everything from the session, so the same run can
// be pointed at jmapd and at other JMAP servers and the results compared.
//
//	jmapload --session-url http://127.0.0.1:8080/.well-known/jmap \
//	    --user alice@example.test:secret --messages 5000 --clients 16 \
//	    --duration 20s --json a.json --html a.html
//	jmapload compare a.json b.json
//	jmapload html a.json a.html
//
// Steps, each skipped with a notice when the server lacks its capability:
// import a corpus (--messages generated messages, or --corpus FILE|DIR),
// run --clients simulated clients for --duration with the --mix of
// operations, then, with --push K, open K EventSource and K WebSocket
// connections and measure how fast changes reach them. Ctrl-C stops the
// run and prints the figures so far.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jmapd/jmapd/internal/loadgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// userList collects repeated --user flags.
type userList []loadgen.User

func (u *userList) String() string {
	var s []string
	for _, x := range *u {
		s = append(s, x.Email)
	}
	return strings.Join(s, ",")
}

func (u *userList) Set(v string) error {
	x, err := loadgen.ParseUser(v)
	if err != nil {
		return err
	}
	*u = append(*u, x)
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "compare" {
		return compare(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "html" {
		return rehtml(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("jmapload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var users userList
	cfg := loadgen.Config{}
	fs.StringVar(&cfg.SessionURL, "session-url", "", "the JMAP session `URL` (required)")
	fs.Var(&users, "user", "login as `EMAIL:PASSWORD` (repeatable; work is spread over the users)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the generated corpus and of the clients' choices")
	fs.IntVar(&cfg.Messages, "messages", 1000, "messages to import (0: none; with --corpus, -1: all of it)")
	fs.StringVar(&cfg.Corpus, "corpus", "", "import this mbox `file or maildir` instead of generated mail")
	fs.IntVar(&cfg.Importers, "importers", 4, "parallel importers")
	fs.IntVar(&cfg.Clients, "clients", 8, "simulated clients (0: no workload)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long the clients run")
	fs.StringVar(&cfg.Mix, "mix", loadgen.DefaultMix, "operation `weights`: "+strings.Join(loadgen.Operations, ", "))
	fs.DurationVar(&cfg.Think, "think", 0, "mean pause between a client's operations")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "timeout of each request")
	fs.IntVar(&cfg.Push, "push", 0, "push connections per transport (0: no push test)")
	fs.DurationVar(&cfg.PushDuration, "push-duration", 10*time.Second, "how long changes are made in the push test")
	fs.IntVar(&cfg.PID, "pid", 0, "the server's process id, to report its memory (local servers only)")
	fs.StringVar(&cfg.Label, "label", "", "a name for this run in reports")
	jsonPath := fs.String("json", "", "write every figure to this JSON `file`")
	htmlPath := fs.String("html", "", "write an HTML report with charts to this `file`")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "no progress lines on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: jmapload --session-url URL --user EMAIL:PASSWORD [flags]\n       jmapload compare A.json B.json\n       jmapload html A.json OUT.html")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "jmapload: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.Users = users
	if cfg.SessionURL == "" || len(cfg.Users) == 0 {
		fmt.Fprintln(stderr, "jmapload: --session-url and --user are required")
		return 2
	}
	if _, err := loadgen.ParseMix(cfg.Mix); err != nil {
		fmt.Fprintf(stderr, "jmapload: %v\n", err)
		return 2
	}
	cfg.Log = stderr

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if _, ok := <-sig; !ok {
			return
		}
		fmt.Fprintln(stderr, "\njmapload: interrupted, stopping (Ctrl-C again to quit at once)")
		cancel()
		if _, ok := <-sig; ok {
			os.Exit(130)
		}
	}()

	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "jmapload: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout)
	rep.WriteTable(stdout)
	code := 0
	if *jsonPath != "" {
		if err := rep.WriteJSON(*jsonPath); err != nil {
			fmt.Fprintf(stderr, "jmapload: %v\n", err)
			code = 1
		}
	}
	if *htmlPath != "" {
		if err := rep.WriteHTML(*htmlPath); err != nil {
			fmt.Fprintf(stderr, "jmapload: %v\n", err)
			code = 1
		}
	}
	if rep.Interrupted && code == 0 {
		code = 130
	}
	return code
}

func compare(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(stderr, "usage: jmapload compare A.json B.json")
		return 2
	}
	a, err := loadgen.ReadReport(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "jmapload: %v\n", err)
		return 1
	}
	b, err := loadgen.ReadReport(args[1])
	if err != nil {
		fmt.Fprintf(stderr, "jmapload: %v\n", err)
		return 1
	}
	nameA, nameB := args[0], args[1]
	if a.Label != "" {
		nameA = a.Label
	}
	if b.Label != "" {
		nameB = b.Label
	}
	loadgen.Compare(stdout, a, b, nameA, nameB)
	return 0
}

// rehtml writes the HTML report of a JSON report again.
func rehtml(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(stderr, "usage: jmapload html A.json OUT.html")
		return 2
	}
	r, err := loadgen.ReadReport(args[0])
	if err == nil {
		err = r.WriteHTML(args[1])
	}
	if err != nil {
		fmt.Fprintf(stderr, "jmapload: %v\n", err)
		return 1
	}
	r.WriteTable(stdout)
	return 0
}
