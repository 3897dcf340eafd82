package badger_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// mappedLogKB sums the resident kilobytes of this process's mappings of
// the value log files in dir (from /proc/self/smaps).
func mappedLogKB(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	abs, _ := filepath.Abs(dir)
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && strings.HasPrefix(fields[5], abs) && strings.HasSuffix(fields[5], ".vlog")
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			total += kb
		}
	}
	return total
}

// What Badger wrote through its mapping of the value log stops counting in
// the process's memory once trimmed, and reads back the same afterwards.
func TestTrimMappings_ValueLogLeavesMemory(t *testing.T) {
	dir := t.TempDir()
	db := openStore(t, badger.Options{Dir: dir, MappedBudget: -1})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []store.BlobID
	var contents [][]byte
	for range 24 {
		data := make([]byte, 1<<20)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		info, err := db.Blobs().Upload(ctx, "acct", "application/octet-stream", bytes.NewReader(data), -1)
		if err != nil {
			t.Fatal(err)
		}
		ids, contents = append(ids, info.ID), append(contents, data)
	}
	before := mappedLogKB(t, dir)
	if before < 16<<10 {
		t.Fatalf("the value log holds %d KB resident after 24 MB of uploads; the test means nothing", before)
	}
	advised, err := badger.TrimMappings(dir, ".vlog")
	if err != nil {
		t.Fatalf("TrimMappings: %v", err)
	}
	after := mappedLogKB(t, dir)
	t.Logf("value log resident: %d KB before, %d KB after (%d MB advised)", before, after, advised>>20)
	if after > before/8 {
		t.Errorf("value log resident %d KB after the trim, %d KB before", after, before)
	}
	for i, id := range ids {
		_, r, err := db.Blobs().Open(ctx, "acct", id, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, contents[i]) {
			t.Fatalf("blob %d after the trim: %v, equal %v", i, err, bytes.Equal(got, contents[i]))
		}
	}
}

// uploadMB stores n MiB of random blobs.
func uploadMB(t *testing.T, db *badger.DB, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	for range n {
		data := make([]byte, 1<<20)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if _, err := db.Blobs().Upload(context.Background(), "acct", "application/octet-stream", bytes.NewReader(data), -1); err != nil {
			t.Fatal(err)
		}
	}
}

// The store keeps the file-backed memory of the process within its
// budget: after 32 MB of uploads it trims the mapped logs back under it,
// and under the budget it leaves them alone (what is read stays cached).
func TestMappedBudget(t *testing.T) {
	base, err := badger.ResidentFile()
	if err != nil {
		t.Skip(err)
	}
	t.Run("over", func(t *testing.T) {
		dir := t.TempDir()
		budget := base + 8<<20
		db := openStore(t, badger.Options{Dir: dir, MappedBudget: budget, TrimCheck: 20 * time.Millisecond})
		uploadMB(t, db, 32)
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, _ := badger.ResidentFile()
			if n <= budget+4<<20 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("file-backed resident %d MB, budget %d MB", n>>20, budget>>20)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("under", func(t *testing.T) {
		dir := t.TempDir()
		db := openStore(t, badger.Options{Dir: dir, MappedBudget: 1 << 40, TrimCheck: time.Hour})
		uploadMB(t, db, 16)
		if err := badger.Trim(db); err != nil {
			t.Fatal(err)
		}
		if kb := mappedLogKB(t, dir); kb < 12<<10 {
			t.Errorf("value log resident %d KB under a budget it never reached", kb)
		}
	})
}

// A data directory reached through a symbolic link (/var/lib/jmapd linked
// to another disk) is trimmed too: the maps name the resolved path.
func TestTrimMappings_ThroughSymlink(t *testing.T) {
	target := t.TempDir()
	link := filepath.Join(t.TempDir(), "data")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	db := openStore(t, badger.Options{Dir: link, MappedBudget: -1})
	uploadMB(t, db, 4)
	if advised, err := badger.TrimMappings(link, ".vlog"); err != nil || advised == 0 {
		t.Errorf("TrimMappings through the link advised %d octets, %v", advised, err)
	}
}
