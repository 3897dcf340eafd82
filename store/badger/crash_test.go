//go:build unix

package badger_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// crashDirEnv carries the data directory to the writer child process of
// TestDurability_AcknowledgedWritesSurviveSIGKILL.
const crashDirEnv = "JMAPD_TEST_CRASH_WRITER_DIR"

const (
	crashAccounts = 4
	crashWorkers  = 8    // two per account, so they conflict on its states
	crashAcks     = 2000 // acknowledged writes before the SIGKILL
)

// mailboxCount is the Mailbox record the writer keeps, like totalEmails: a
// count maintained on write, in the same transaction as the email.
type mailboxCount struct {
	Total int `json:"totalEmails"`
}

func crashAccount(i int) store.AccountID { return store.AccountID(fmt.Sprintf("acct%d", i)) }

// TestHelperWriter is the child process of the durability test, not a test
// of its own: it writes until it is killed and prints "ack ACCOUNT ID" on
// stdout after each Update returned.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestDurability_AcknowledgedWritesSurviveSIGKILL")
	}
	db, err := badger.Open(badger.Options{Dir: dir})
	if err != nil {
		fmt.Printf("err open: %v\n", err)
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for i := range crashAccounts {
		_, err := db.Update(ctx, func(tx store.Tx) error {
			return tx.Create(crashAccount(i), "Mailbox", "inbox", []byte(`{"totalEmails":0}`))
		})
		if err != nil {
			fmt.Printf("err create inbox: %v\n", err)
			t.Fatal(err)
		}
	}

	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWorkers {
		acct := crashAccount(w % crashAccounts)
		wg.Go(func() {
			for n := 0; n < 1_000_000; n++ {
				var id string
				_, err := db.Update(ctx, func(tx store.Tx) error {
					var err error
					if id, err = tx.NewID(); err != nil {
						return err
					}
					email := fmt.Sprintf(`{"worker":%d,"n":%d,"body":"%s"}`, w, n, strings.Repeat("x", 200))
					if err := tx.Create(acct, "Email", id, []byte(email)); err != nil {
						return err
					}
					v, err := tx.Get(acct, "Mailbox", "inbox")
					if err != nil {
						return err
					}
					var mb mailboxCount
					if err := json.Unmarshal(v, &mb); err != nil {
						return err
					}
					mb.Total++
					if v, err = json.Marshal(mb); err != nil {
						return err
					}
					return tx.PutProps(acct, "Mailbox", "inbox", v, []string{"totalEmails"})
				})
				out.Lock()
				if err != nil {
					fmt.Printf("err update: %v\n", err)
				} else {
					// One write(2) per line, after Update returned: the
					// parent counts only what reached the pipe.
					fmt.Printf("ack %s %s\n", acct, id)
				}
				out.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestDurability_AcknowledgedWritesSurviveSIGKILL is the test DESIGN.md
// (Durability and state) asks for: a child process takes concurrent writes,
// is killed with SIGKILL mid-stream, and on reopening every acknowledged write
// is there, with states, change logs and counts that agree.
func TestDurability_AcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A child that hangs is killed too: its stdout closes and the read
	// below ends.
	watchdog := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer watchdog.Stop()

	acked := map[store.AccountID][]string{}
	n, killed := 0, false
	var childErrs []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		var acct, id string
		switch {
		case strings.HasPrefix(line, "ack "):
			if _, err := fmt.Sscanf(line, "ack %s %s", &acct, &id); err != nil {
				t.Fatalf("child line %q: %v", line, err)
			}
		case strings.HasPrefix(line, "err "):
			childErrs = append(childErrs, line)
			continue
		default:
			continue // the testing package's own output
		}
		acked[store.AccountID(acct)] = append(acked[store.AccountID(acct)], id)
		n++
		if n == crashAcks && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
		// Lines already in the pipe when the child died were acknowledged
		// too: keep reading to the end.
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read child output: %v", err)
	}
	werr := cmd.Wait()
	if len(childErrs) > 0 {
		t.Fatalf("child reported errors: %q\nstderr:\n%s", childErrs, stderr.String())
	}
	if !killed {
		t.Fatalf("child ended after %d acknowledged writes: %v\nstderr:\n%s", n, werr, stderr.String())
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\nstderr:\n%s", werr, stderr.String())
	}
	t.Logf("%d writes acknowledged before the child died", n)

	db := openStore(t, badger.Options{Dir: dir})
	view(t, db, func(tx store.Tx) error {
		for acct, ids := range acked {
			for _, id := range ids {
				if _, err := tx.Get(acct, "Email", id); err != nil {
					return fmt.Errorf("acknowledged email %s/%s: %w", acct, id, err)
				}
			}
		}
		for i := range crashAccounts {
			if err := checkCrashAccount(tx, crashAccount(i), len(acked[crashAccount(i)])); err != nil {
				return err
			}
		}
		return nil
	})

	// Ids handed out before the crash are not handed out again.
	update(t, db, func(tx store.Tx) error {
		for range 1000 {
			id, err := tx.NewID()
			if err != nil {
				return err
			}
			if err := tx.Create(crashAccount(0), "Email", id, []byte(`{}`)); err != nil {
				return fmt.Errorf("create %s after reopen: %w", id, err)
			}
		}
		return nil
	})
}

// checkCrashAccount checks that the Email records of acct, its Email and
// Mailbox states, their change logs and the inbox count tell the same story,
// and that it holds at least the acknowledged emails.
func checkCrashAccount(tx store.Tx, acct store.AccountID, acked int) error {
	var emails []string
	for o, err := range tx.Scan(acct, "Email") {
		if err != nil {
			return err
		}
		emails = append(emails, o.ID)
	}
	if len(emails) < acked {
		return fmt.Errorf("%s: %d emails stored, %d acknowledged", acct, len(emails), acked)
	}

	emailState, err := tx.State(acct, "Email")
	if err != nil {
		return err
	}
	log, more, err := tx.Changes(acct, "Email", 0, 0)
	if err != nil {
		return err
	}
	if more || store.State(len(log)) != emailState {
		return fmt.Errorf("%s: Email state %d, change log has %d entries (more=%v)", acct, emailState, len(log), more)
	}
	var created []string
	for i, c := range log {
		if c.State != store.State(i+1) || len(c.Created) != 1 || len(c.Updated) != 0 || len(c.Destroyed) != 0 {
			return fmt.Errorf("%s: Email change log entry %d = %+v, want state %d creating one email", acct, i, c, i+1)
		}
		created = append(created, c.Created[0])
	}
	slices.Sort(created)
	if !slices.Equal(created, emails) { // Scan yields in id order
		return fmt.Errorf("%s: change log created %d emails, %d are stored", acct, len(created), len(emails))
	}

	v, err := tx.Get(acct, "Mailbox", "inbox")
	if err != nil {
		return fmt.Errorf("%s: inbox: %w", acct, err)
	}
	var mb mailboxCount
	if err := json.Unmarshal(v, &mb); err != nil {
		return err
	}
	if mb.Total != len(emails) {
		return fmt.Errorf("%s: inbox counts %d emails, %d are stored", acct, mb.Total, len(emails))
	}
	mbState, err := tx.State(acct, "Mailbox")
	if err != nil {
		return err
	}
	mbLog, _, err := tx.Changes(acct, "Mailbox", 0, 0)
	if err != nil {
		return err
	}
	// One state for creating the inbox, one per email counted in it.
	if want := store.State(1 + len(emails)); mbState != want || store.State(len(mbLog)) != want {
		return fmt.Errorf("%s: Mailbox state %d, change log %d entries, want %d", acct, mbState, len(mbLog), want)
	}
	for i, c := range mbLog[1:] {
		if !slices.Equal(c.Updated, []string{"inbox"}) || !slices.Equal(c.Props, []string{"totalEmails"}) {
			return fmt.Errorf("%s: Mailbox change log entry %d = %+v", acct, i+2, c)
		}
	}
	return nil
}
