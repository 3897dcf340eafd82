package badger

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// closedLogs syncs the logs Badger has stopped writing. Badger's Sync
// covers only the value log and the write-ahead log it writes now; when it
// moves on to a new file (a full value log, a full memtable) it does not
// sync the one it leaves unless every write syncs, so the last commits of
// that file would be lost on a power failure although they were
// acknowledged. After each Sync, closedLogs syncs every log that is no
// longer the newest of its kind, once.
//
// Only the groupSyncer calls it, one sync at a time.
type closedLogs struct {
	dir string
	// seen is the directory's modification time at the last scan: a new
	// log is a new file, which changes it.
	seen time.Time
	// synced holds the names of closed logs already synced.
	synced map[string]bool
	// syncFile syncs one file; a test records the calls.
	syncFile func(path string) error
}

// logKinds are the extensions of Badger's logs: value logs and memtable
// write-ahead logs, each numbered in the order it was created.
var logKinds = []string{".vlog", ".mem"}

func newClosedLogs(dir string) *closedLogs {
	return &closedLogs{dir: dir, synced: map[string]bool{}, syncFile: fsyncFile}
}

// sync syncs the logs closed since the last call.
func (c *closedLogs) sync() error {
	fi, err := os.Stat(c.dir)
	if err != nil {
		return err
	}
	// The clock that stamps a directory is coarse: a file made in the same
	// tick as the last scan leaves the time as it was, so a directory
	// changed lately is always scanned.
	m := fi.ModTime()
	if m.Equal(c.seen) && time.Since(m) > time.Second {
		return nil
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	logs, newest := parseLogs(entries)
	present := make(map[string]bool, len(logs))
	for _, l := range logs {
		present[l.name] = true
		if l.n == newest[l.ext] || c.synced[l.name] {
			continue
		}
		err := c.syncFile(filepath.Join(c.dir, l.name))
		if errors.Is(err, fs.ErrNotExist) {
			// Flushed to a table or collected meanwhile: what it held is
			// in a synced file now.
			continue
		}
		if err != nil {
			return err
		}
		c.synced[l.name] = true
	}
	for name := range c.synced {
		if !present[name] {
			delete(c.synced, name)
		}
	}
	c.seen = m
	return nil
}

type logFile struct {
	name, ext string
	n         uint64
}

// parseLogs picks Badger's logs out of a directory listing and the highest
// number of each kind.
func parseLogs(entries []os.DirEntry) ([]logFile, map[string]uint64) {
	var logs []logFile
	newest := map[string]uint64{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		name := e.Name()
		for _, ext := range logKinds {
			stem, ok := strings.CutSuffix(name, ext)
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(stem, 10, 64)
			if err != nil {
				break
			}
			logs = append(logs, logFile{name: name, ext: ext, n: n})
			newest[ext] = max(newest[ext], n)
		}
	}
	return logs, newest
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
