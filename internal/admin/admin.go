// Package admin runs the operator's commands of the command line contract
// (user, group, shared, token; DESIGN.md "Command line contract").
//
// A command runs in-process against an open store (Run) or, when a server
// holds the data directory, through the server's admin socket (Remote on
// the command's side, Serve on the server's): Badger locks the directory,
// so only one process may open the store.
//
// Every command that writes does all its writing in one Update, after all
// its checks, so a command that fails changes nothing.
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jmapd/jmapd/store"
)

// Run executes one admin command. args are the words after "jmapd", such as
// ["user", "add", "a@b.c", "--password", "x"]; flags may stand before or
// after the positional arguments, and --data DIR is accepted anywhere and
// ignored (the caller has used it to open st). Output for scripts goes to
// out: plain, one item a line, or JSON with --json. A returned error is one
// line for stderr; the command then changed nothing.
func Run(ctx context.Context, st store.Store, args []string, stdin io.Reader, out io.Writer) error {
	_, _, err := run(ctx, st, args, stdin, out)
	return err
}

// usageError is a mistake of the caller (a bad argument, an unknown
// principal, an address already taken), as opposed to a failure of the
// store. Its text may quote what the caller typed, so it is never logged.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{fmt.Sprintf(format, a...)}
}

// flagKind says whether a flag takes a value.
type flagKind int

const (
	boolFlag  flagKind = iota // --json
	valueFlag                 // --name NAME or --name=NAME
	listFlag                  // a value flag that may repeat: --member A --member B
)

// flagKinds lists every flag of every command, so that the words of a
// command line can be told apart before the command is known.
var flagKinds = map[string]flagKind{
	"data":           valueFlag,
	"json":           boolFlag,
	"name":           valueFlag,
	"password":       valueFlag,
	"password-stdin": boolFlag,
	"member":         listFlag,
	"archive":        boolFlag,
	"company":        boolFlag,
	"with":           valueFlag,
	"rights":         valueFlag,
	"mailbox":        valueFlag,
}

// globalFlags are accepted by every command.
var globalFlags = []string{"data", "json"}

// command is one admin command.
type command struct {
	words []string // "user", "add"
	args  []string // names of the positional arguments, for messages
	flags []string // allowed besides globalFlags
	usage string   // the arguments and flags, as in DESIGN.md
	write bool     // it changes something: a running server flushes caches
	run   func(ctx context.Context, st store.Store, c *call) error
}

func (c *command) name() string { return strings.Join(c.words, " ") }

var commands []*command

func init() {
	commands = []*command{
		{words: []string{"user", "add"}, args: []string{"EMAIL"}, flags: []string{"name", "password", "password-stdin"},
			usage: "EMAIL [--name NAME] [--password PW | --password-stdin]", write: true, run: userAdd},
		{words: []string{"user", "passwd"}, args: []string{"EMAIL"}, flags: []string{"password", "password-stdin"},
			usage: "EMAIL [--password PW | --password-stdin]", write: true, run: userPasswd},
		{words: []string{"user", "list"}, usage: "[--json]", run: userList},
		{words: []string{"user", "remove"}, args: []string{"EMAIL"}, usage: "EMAIL", write: true, run: userRemove},
		{words: []string{"group", "add"}, args: []string{"EMAIL"}, flags: []string{"name", "member", "archive", "company"},
			usage: "EMAIL [--name NAME] [--member EMAIL]... [--archive] [--company]", write: true, run: groupAdd},
		{words: []string{"group", "member", "add"}, args: []string{"GROUP_EMAIL", "MEMBER_EMAIL"},
			usage: "GROUP_EMAIL MEMBER_EMAIL", write: true, run: groupMemberAdd},
		{words: []string{"group", "member", "remove"}, args: []string{"GROUP_EMAIL", "MEMBER_EMAIL"},
			usage: "GROUP_EMAIL MEMBER_EMAIL", write: true, run: groupMemberRemove},
		{words: []string{"shared", "add"}, args: []string{"EMAIL"}, flags: []string{"name"},
			usage: "EMAIL [--name NAME]", write: true, run: sharedAdd},
		{words: []string{"share"}, args: []string{"ACCOUNT_EMAIL"}, flags: []string{"with", "rights", "mailbox"},
			usage: "ACCOUNT_EMAIL --with PRINCIPAL_EMAIL --rights read|readAdvanced|write|manage|none [--mailbox NAME]",
			write: true, run: share},
		{words: []string{"token", "create"}, args: []string{"EMAIL"}, flags: []string{"name"},
			usage: "EMAIL [--name NAME]", write: true, run: tokenCreate},
		{words: []string{"token", "list"}, args: []string{"EMAIL"}, usage: "EMAIL [--json]", run: tokenList},
		{words: []string{"token", "revoke"}, args: []string{"TOKEN_ID"}, usage: "TOKEN_ID", write: true, run: tokenRevoke},
	}
}

// call is one parsed invocation of a command.
type call struct {
	cmd    *command
	args   []string            // positional arguments after the command words
	values map[string]string   // valueFlag
	lists  map[string][]string // listFlag
	bools  map[string]bool     // boolFlag
	stdin  io.Reader
	out    io.Writer
}

func (c *call) json() bool { return c.bools["json"] }

// run executes a command line and reports the command's name ("" when none
// matched) and whether it changed anything.
func run(ctx context.Context, st store.Store, args []string, stdin io.Reader, out io.Writer) (name string, changed bool, err error) {
	c, err := parse(args)
	if err != nil {
		if c != nil {
			return c.cmd.name(), false, err
		}
		return "", false, err
	}
	c.stdin, c.out = stdin, out
	name = c.cmd.name()
	if err := c.cmd.run(ctx, st, c); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return name, false, usagef("%s: %s", name, ue.msg)
		}
		return name, false, fmt.Errorf("%s: %w", name, err)
	}
	return c.cmd.name(), c.cmd.write, nil
}

// words splits a command line into positional words and flags. A flag is
// -name or --name; a valueFlag takes the next word or =VALUE. "--" ends the
// flags. Error messages never quote a flag's value: it may be a password.
func words(args []string) (pos []string, flags []flagUse, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value, hasValue := "", false
		if k := strings.IndexByte(name, '='); k >= 0 {
			name, value, hasValue = name[:k], name[k+1:], true
		}
		kind, ok := flagKinds[name]
		if !ok || name == "" {
			return nil, nil, usagef("unknown flag --%s", name)
		}
		switch {
		case kind == boolFlag && hasValue:
			return nil, nil, usagef("flag --%s takes no value", name)
		case kind != boolFlag && !hasValue:
			if i+1 >= len(args) {
				return nil, nil, usagef("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		flags = append(flags, flagUse{name, value})
	}
	return pos, flags, nil
}

// flagUse is one flag as given.
type flagUse struct{ name, value string }

// parse finds the command and checks its arguments and flags. When the
// command is known but its use is wrong, it returns the call (for the
// command's name) and the error.
func parse(args []string) (*call, error) {
	pos, flags, err := words(args)
	if err != nil {
		// Name the command when the plain words show it.
		var plain []string
		for _, a := range args {
			if !strings.HasPrefix(a, "-") {
				plain = append(plain, a)
			}
		}
		cmd, lerr := lookup(plain)
		switch {
		case lerr == nil:
			return &call{cmd: cmd}, usagef("%s: %s", cmd.name(), err)
		case len(plain) > 0 && !slices.Contains(topics(), plain[0]):
			return nil, lerr // not an admin command at all
		}
		return nil, err
	}
	cmd, err := lookup(pos)
	if err != nil {
		return nil, err
	}
	c := &call{cmd: cmd, args: pos[len(cmd.words):], values: map[string]string{},
		lists: map[string][]string{}, bools: map[string]bool{}}
	fail := func(format string, a ...any) (*call, error) {
		return c, usagef("%s: %s (usage: jmapd %s %s)", cmd.name(), fmt.Sprintf(format, a...), cmd.name(), cmd.usage)
	}
	for _, f := range flags {
		if !slices.Contains(cmd.flags, f.name) && !slices.Contains(globalFlags, f.name) {
			return fail("unknown flag --%s", f.name)
		}
		switch flagKinds[f.name] {
		case boolFlag:
			c.bools[f.name] = true
		case listFlag:
			c.lists[f.name] = append(c.lists[f.name], f.value)
		case valueFlag:
			if _, dup := c.values[f.name]; dup {
				return fail("flag --%s given twice", f.name)
			}
			c.values[f.name] = f.value
		}
	}
	if _, ok := c.values["password"]; ok && c.bools["password-stdin"] {
		return fail("--password and --password-stdin exclude each other")
	}
	if len(c.args) < len(cmd.args) {
		return fail("missing %s", strings.Join(cmd.args[len(c.args):], " "))
	}
	if len(c.args) > len(cmd.args) {
		return fail("unexpected argument %q", c.args[len(cmd.args)])
	}
	return c, nil
}

// lookup finds the command the leading positional words name.
func lookup(pos []string) (*command, error) {
	if len(pos) == 0 {
		return nil, usagef("no command given; admin commands: %s", strings.Join(topics(), ", "))
	}
	if !slices.Contains(topics(), pos[0]) {
		return nil, usagef("unknown command %q; admin commands: %s", pos[0], strings.Join(topics(), ", "))
	}
	var best *command
	for _, c := range commands {
		if len(c.words) <= len(pos) && slices.Equal(c.words, pos[:len(c.words)]) {
			if best == nil || len(c.words) > len(best.words) {
				best = c
			}
		}
	}
	if best != nil {
		return best, nil
	}
	// Name the words that may follow the longest prefix that matched.
	for n := len(pos); n >= 1; n-- {
		var next []string
		for _, c := range commands {
			if len(c.words) > n && slices.Equal(c.words[:n], pos[:n]) && !slices.Contains(next, c.words[n]) {
				next = append(next, c.words[n])
			}
		}
		if len(next) == 0 {
			continue
		}
		prefix := strings.Join(pos[:n], " ")
		if n == len(pos) {
			return nil, usagef("%s: missing subcommand (%s)", prefix, strings.Join(next, ", "))
		}
		return nil, usagef("%s: unknown subcommand %q (%s)", prefix, pos[n], strings.Join(next, ", "))
	}
	return nil, usagef("unknown command %q", pos[0])
}

// topics returns the first words of the commands, in table order.
func topics() []string {
	var out []string
	for _, c := range commands {
		if !slices.Contains(out, c.words[0]) {
			out = append(out, c.words[0])
		}
	}
	return out
}
