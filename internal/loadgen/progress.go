package loadgen

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress prints a status line for a long step: rewritten in place once a
// second on a terminal, one line every ten seconds otherwise.
type Progress struct {
	W   io.Writer
	TTY bool
}

// NewProgress returns a progress printer on stderr, or nil when quiet.
func NewProgress(quiet bool) *Progress {
	if quiet {
		return nil
	}
	tty := false
	if fi, err := os.Stderr.Stat(); err == nil {
		tty = fi.Mode()&os.ModeCharDevice != 0
	}
	return &Progress{W: os.Stderr, TTY: tty}
}

// Start prints line() periodically until the returned stop function is
// called, which prints it one last time.
func (p *Progress) Start(line func() string) (stop func()) {
	if p == nil {
		return func() {}
	}
	every := 10 * time.Second
	if p.TTY {
		every = time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	last := 0
	print := func(final bool) {
		s := line()
		if p.TTY {
			pad := ""
			if last > len(s) {
				pad = strings.Repeat(" ", last-len(s))
			}
			last = len(s)
			fmt.Fprint(p.W, "\r"+s+pad)
			if final {
				fmt.Fprintln(p.W)
			}
			return
		}
		fmt.Fprintln(p.W, s)
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				print(false)
			case <-done:
				print(true)
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}
