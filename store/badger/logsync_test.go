package badger

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// recordSyncs makes c record the files it syncs instead of syncing them.
func recordSyncs(c *closedLogs) *[]string {
	var got []string
	c.syncFile = func(path string) error {
		if _, err := os.Stat(path); err != nil {
			return err
		}
		got = append(got, filepath.Base(path))
		return nil
	}
	return &got
}

func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A log Badger has moved on from is synced once, the newest of each kind
// is left to Badger's own Sync, and tables and other files are not logs.
func TestClosedLogsSyncsEachLogBadgerLeft(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "000001.vlog", "000002.vlog", "00007.mem", "00009.mem", "000003.sst", "MANIFEST", "x.vlog")
	c := newClosedLogs(dir)
	got := recordSyncs(c)
	if err := c.sync(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(*got)
	if want := []string{"000001.vlog", "00007.mem"}; !slices.Equal(*got, want) {
		t.Fatalf("first sync synced %q, want %q", *got, want)
	}

	// Nothing new: nothing synced again.
	*got = nil
	if err := c.sync(); err != nil {
		t.Fatal(err)
	}
	if len(*got) != 0 {
		t.Fatalf("second sync synced %q again", *got)
	}

	// Badger moves to a new value log and a new memtable; a log flushed
	// and removed meanwhile is no longer expected.
	touch(t, dir, "000003.vlog", "00010.mem")
	if err := os.Remove(filepath.Join(dir, "00007.mem")); err != nil {
		t.Fatal(err)
	}
	if err := c.sync(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(*got)
	if want := []string{"000002.vlog", "00009.mem"}; !slices.Equal(*got, want) {
		t.Fatalf("after rotation synced %q, want %q", *got, want)
	}
	if c.synced["00007.mem"] {
		t.Fatal("a removed log is still remembered")
	}
}

// The directory's time is coarse: a log made within the same tick as the
// last scan must still be found.
func TestClosedLogsSameDirectoryTime(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "000001.vlog")
	c := newClosedLogs(dir)
	got := recordSyncs(c)
	if err := c.sync(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	touch(t, dir, "000002.vlog")
	// As if the new file had not moved the directory's time.
	if err := os.Chtimes(dir, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := c.sync(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(*got, []string{"000001.vlog"}) {
		t.Fatalf("synced %q, want the log left in the same tick", *got)
	}
}

// A directory unchanged for a while is not read again.
func TestClosedLogsQuietDirectoryNotRead(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "000001.vlog", "000002.vlog")
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	c := newClosedLogs(dir)
	got := recordSyncs(c)
	if err := c.sync(); err != nil {
		t.Fatal(err)
	}
	// A log added without the directory's time changing is not seen: the
	// time is all that is read.
	touch(t, dir, "000003.vlog")
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	if err := c.sync(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(*got, []string{"000001.vlog"}) {
		t.Fatalf("synced %q, want only the first scan's closed log", *got)
	}
}

// Badger names its logs as parseLogs reads them: a fresh store has one
// value log and one write-ahead log, each the newest of its kind.
func TestBadgerLogNames(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	logs, newest := parseLogs(entries)
	kinds := map[string]int{}
	for _, l := range logs {
		kinds[l.ext]++
		if l.n != newest[l.ext] {
			t.Errorf("fresh store has an older log %s", l.name)
		}
	}
	if kinds[".vlog"] != 1 || kinds[".mem"] != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("logs %v in a fresh store (files %q), want one .vlog and one .mem", kinds, names)
	}
}
