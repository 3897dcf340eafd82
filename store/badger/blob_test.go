package badger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

const mib = 1 << 20

// blobBytes returns n pseudo-random bytes, the same for the same seed.
func blobBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func upload(t testing.TB, db store.Store, acct store.AccountID, typ string, data []byte) store.BlobInfo {
	t.Helper()
	info, err := db.Blobs().Upload(context.Background(), acct, typ, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("upload %d bytes to %s: %v", len(data), acct, err)
	}
	return info
}

// readBlob opens bytes [off, off+n) of blob id as acct and reads them all.
func readBlob(db store.Store, acct store.AccountID, id store.BlobID, off, n int64) ([]byte, error) {
	_, r, err := db.Blobs().Open(context.Background(), acct, id, off, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func wantBlob(t testing.TB, db store.Store, acct store.AccountID, id store.BlobID, want []byte) {
	t.Helper()
	got, err := readBlob(db, acct, id, 0, -1)
	if err != nil {
		t.Fatalf("open %s as %s: %v", id, acct, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("blob %s as %s: got %d bytes, want %d (contents differ)", id, acct, len(got), len(want))
	}
}

// wantNoBlob checks that acct cannot see blob id, through Open and through
// BlobAccess alike.
func wantNoBlob(t testing.TB, db store.Store, acct store.AccountID, id store.BlobID) {
	t.Helper()
	if got, err := readBlob(db, acct, id, 0, -1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("open %s as %s = %d bytes, %v; want store.ErrNotFound", id, acct, len(got), err)
	}
	err := db.View(context.Background(), func(tx store.Tx) error {
		_, err := tx.BlobAccess(acct, id)
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("BlobAccess(%s, %s) = %v, want store.ErrNotFound", acct, id, err)
	}
}

func blobID(data []byte) store.BlobID {
	sum := sha256.Sum256(data)
	return store.BlobID("G" + hex.EncodeToString(sum[:]))
}

func chunkVersions(t testing.TB, db *badger.DB, id store.BlobID) []uint64 {
	t.Helper()
	v, err := badger.BlobChunkVersions(db, id)
	if err != nil {
		t.Fatalf("chunks of %s: %v", id, err)
	}
	return v
}

func collect(t testing.TB, db store.Store, now time.Time) int {
	t.Helper()
	n, err := db.Blobs().Collect(context.Background(), now)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	return n
}

func TestBlob_UploadSameBytesStoredOnce(t *testing.T) {
	db := openStore(t, badger.Options{})
	data := blobBytes(mib+10, 1) // two chunks

	first := upload(t, db, "a1", "image/png", data)
	if first.ID != blobID(data) || first.Size != int64(len(data)) || first.Type != "image/png" {
		t.Fatalf("Upload = %+v, want id %s size %d", first, blobID(data), len(data))
	}
	versions := chunkVersions(t, db, first.ID)
	if len(versions) != 2 {
		t.Fatalf("stored %d chunks, want 2", len(versions))
	}

	// The same bytes again, from the same account and from another one.
	second := upload(t, db, "a1", "application/octet-stream", data)
	third := upload(t, db, "a2", "", data)
	if second.ID != first.ID || third.ID != first.ID {
		t.Fatalf("ids differ: %s, %s, %s", first.ID, second.ID, third.ID)
	}
	if got := chunkVersions(t, db, first.ID); !slices.Equal(got, versions) {
		t.Fatalf("chunk versions %v after re-upload, want %v: the content was written again", got, versions)
	}
	wantBlob(t, db, "a1", first.ID, data)
	wantBlob(t, db, "a2", first.ID, data)

	// The type is the one of the last upload that gave one.
	view(t, db, func(tx store.Tx) error {
		info, err := tx.BlobAccess("a2", first.ID)
		if err != nil {
			return err
		}
		if info.Type != "application/octet-stream" || info.Size != int64(len(data)) {
			return fmt.Errorf("BlobAccess = %+v", info)
		}
		return nil
	})
}

func TestBlob_TooLargeStoresNothing(t *testing.T) {
	db := openStore(t, badger.Options{})
	data := blobBytes(1000, 2)
	_, err := db.Blobs().Upload(context.Background(), "a1", "", bytes.NewReader(data), int64(len(data)-1))
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("upload of max+1 bytes: err = %v, want store.ErrTooLarge", err)
	}
	id := blobID(data)
	wantNoBlob(t, db, "a1", id)
	if v := chunkVersions(t, db, id); len(v) != 0 {
		t.Fatalf("%d chunks stored after ErrTooLarge", len(v))
	}

	// Exactly max bytes is allowed.
	info := upload(t, db, "a1", "", data)
	wantBlob(t, db, "a1", info.ID, data)
}

func TestBlob_OpenRanges(t *testing.T) {
	db := openStore(t, badger.Options{})
	data := blobBytes(5*mib/2, 3) // chunks of 1 MiB, 1 MiB, 0.5 MiB
	info := upload(t, db, "a1", "", data)
	size := int64(len(data))

	for _, c := range []struct {
		name     string
		off, n   int64
		from, to int64 // want data[from:to]
	}{
		{"all", 0, -1, 0, size},
		{"head", 0, 100, 0, 100},
		{"empty", 10, 0, 10, 10},
		{"firstChunkExactly", 0, mib, 0, mib},
		{"acrossFirstBoundary", mib - 5, 10, mib - 5, mib + 5},
		{"startsOnBoundary", mib, 7, mib, mib + 7},
		{"endsOnBoundary", mib - 7, 7, mib - 7, mib},
		{"secondChunkExactly", mib, mib, mib, 2 * mib},
		{"spansThreeChunks", mib - 1, mib + 2, mib - 1, 2*mib + 1},
		{"fromSecondBoundaryToEnd", 2 * mib, -1, 2 * mib, size},
		{"tail", size - 3, -1, size - 3, size},
		{"lengthPastEnd", size - 3, 100, size - 3, size},
		{"atEnd", size, -1, size, size},
		{"pastEnd", size + 10, 5, size, size},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := readBlob(db, "a1", info.ID, c.off, c.n)
			if err != nil {
				t.Fatal(err)
			}
			if want := data[c.from:c.to]; !bytes.Equal(got, want) {
				t.Fatalf("Open(%d, %d): got %d bytes, want data[%d:%d] (%d bytes)", c.off, c.n, len(got), c.from, c.to, len(want))
			}
		})
	}

	// The reader seeks within the range it was opened for.
	gotInfo, r, err := db.Blobs().Open(context.Background(), "a1", info.ID, mib-2, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if gotInfo.ID != info.ID || gotInfo.Size != size {
		t.Fatalf("Open info = %+v, want id %s size %d", gotInfo, info.ID, size)
	}
	if _, err := r.Seek(2, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(r); err != nil || !bytes.Equal(rest, data[mib:mib+2]) {
		t.Fatalf("after seek read %x, %v; want %x", rest, err, data[mib:mib+2])
	}
}

func TestBlob_EmptyBlob(t *testing.T) {
	db := openStore(t, badger.Options{BlobGrace: time.Minute})
	info := upload(t, db, "a1", "text/plain", nil)
	if info.ID != blobID(nil) || info.Size != 0 {
		t.Fatalf("Upload = %+v", info)
	}
	wantBlob(t, db, "a1", info.ID, nil)
	if n := collect(t, db, time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("collected %d, want 1", n)
	}
	wantNoBlob(t, db, "a1", info.ID)
}

// TestBlob_OtherAccountCannotRead checks that a blob another account uploaded
// answers exactly like one that does not exist.
func TestBlob_OtherAccountCannotRead(t *testing.T) {
	db := openStore(t, badger.Options{})
	data := []byte("secret of a1")
	info := upload(t, db, "a1", "", data)
	wantBlob(t, db, "a1", info.ID, data)

	wantNoBlob(t, db, "a2", info.ID)
	wantNoBlob(t, db, "a1", blobID([]byte("never uploaded")))
	for _, bad := range []store.BlobID{"", "G", "Gzz", store.BlobID(strings.Replace(string(info.ID), "G", "X", 1)), info.ID + "0"} {
		wantNoBlob(t, db, "a1", bad)
	}

	// A reference from a record of a2 gives a2 access; dropping it takes it away.
	update(t, db, func(tx store.Tx) error { return tx.BlobRef("a2", info.ID) })
	wantBlob(t, db, "a2", info.ID, data)
	update(t, db, func(tx store.Tx) error { return tx.BlobUnref("a2", info.ID) })
	wantNoBlob(t, db, "a2", info.ID)

	_, err := db.Update(context.Background(), func(tx store.Tx) error { return tx.BlobUnref("a2", info.ID) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unref without reference: err = %v, want store.ErrNotFound", err)
	}
	_, err = db.Update(context.Background(), func(tx store.Tx) error { return tx.BlobRef("a2", blobID([]byte("nope"))) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ref of a missing blob: err = %v, want store.ErrNotFound", err)
	}
}

// TestBlob_CollectKeepsReferencedAndRemovesExpired uses a grace of a minute
// and collects an hour ahead, so every upload grant has expired.
func TestBlob_CollectKeepsReferencedAndRemovesExpired(t *testing.T) {
	db := openStore(t, badger.Options{BlobGrace: time.Minute})
	kept, dropped := blobBytes(3*mib/2, 4), blobBytes(3*mib/2, 5)
	keptInfo := upload(t, db, "a1", "", kept)
	droppedInfo := upload(t, db, "a1", "", dropped)
	update(t, db, func(tx store.Tx) error { return tx.BlobRef("a1", keptInfo.ID) })

	// Before the grace ends nothing goes.
	if n := collect(t, db, time.Now()); n != 0 {
		t.Fatalf("collect within grace removed %d", n)
	}
	wantBlob(t, db, "a1", droppedInfo.ID, dropped)

	later := time.Now().Add(time.Hour)
	if n := collect(t, db, later); n != 1 {
		t.Fatalf("collect removed %d, want 1", n)
	}
	wantBlob(t, db, "a1", keptInfo.ID, kept)
	wantNoBlob(t, db, "a1", droppedInfo.ID)
	if v := chunkVersions(t, db, droppedInfo.ID); len(v) != 0 {
		t.Fatalf("%d chunks of the collected blob remain", len(v))
	}
	if n := collect(t, db, later); n != 0 {
		t.Fatalf("second collect removed %d, want 0", n)
	}

	// The same bytes can be uploaded again and read back.
	again := upload(t, db, "a1", "", dropped)
	if again.ID != droppedInfo.ID {
		t.Fatalf("re-upload id %s, want %s", again.ID, droppedInfo.ID)
	}
	wantBlob(t, db, "a1", again.ID, dropped)
}

// TestBlob_UnreferencedAfterGraceIsCollected drops the last reference to a
// blob whose upload grant was already collected: nothing references it and
// its grace is over, so Collect must remove it.
func TestBlob_UnreferencedAfterGraceIsCollected(t *testing.T) {
	db := openStore(t, badger.Options{BlobGrace: time.Minute})
	data := blobBytes(1000, 6)
	info := upload(t, db, "a1", "", data)
	update(t, db, func(tx store.Tx) error { return tx.BlobRef("a1", info.ID) })
	if n := collect(t, db, time.Now().Add(time.Hour)); n != 0 {
		t.Fatalf("collect removed %d referenced blobs", n)
	}
	wantBlob(t, db, "a1", info.ID, data)

	update(t, db, func(tx store.Tx) error { return tx.BlobUnref("a1", info.ID) })
	wantNoBlob(t, db, "a1", info.ID)
	if n := collect(t, db, time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("collect removed %d, want 1", n)
	}
	if v := chunkVersions(t, db, info.ID); len(v) != 0 {
		t.Fatalf("%d chunks remain after the last reference was dropped", len(v))
	}
}

// TestBlob_RenewedGrantSurvivesCollect uploads the same bytes twice: the
// second upload extends the grant, so the first grant's expiry must not end
// it.
func TestBlob_RenewedGrantSurvivesCollect(t *testing.T) {
	db := openStore(t, badger.Options{BlobGrace: time.Hour})
	data := blobBytes(500, 7)
	info := upload(t, db, "a1", "", data)
	first := time.Now().Add(time.Hour)
	upload(t, db, "a1", "", data)
	if n := collect(t, db, first); n != 0 {
		t.Fatalf("collect at the first grant's expiry removed %d", n)
	}
	wantBlob(t, db, "a1", info.ID, data)
	if n := collect(t, db, time.Now().Add(3*time.Hour)); n != 1 {
		t.Fatalf("collect after every grant removed %d, want 1", n)
	}
}

// TestBlob_UploadRacingCollect uploads the same bytes while Collect keeps
// removing them: whatever the interleaving, a blob the store knows has its
// content, and an upload that returned can be read until it is collected.
func TestBlob_UploadRacingCollect(t *testing.T) {
	db := openStore(t, badger.Options{BlobGrace: time.Nanosecond})
	data := blobBytes(mib+1, 8)
	id := blobID(data)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := db.Blobs().Collect(context.Background(), time.Now().Add(time.Hour)); err != nil {
				t.Errorf("collect: %v", err)
				return
			}
		}
	})
	for range 30 {
		if _, err := db.Blobs().Upload(context.Background(), "a1", "", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Errorf("upload: %v", err)
			break
		}
	}
	close(done)
	wg.Wait()

	// The grant has expired: reach the content through a reference.
	var known bool
	_, err := db.Update(context.Background(), func(tx store.Tx) error {
		err := tx.BlobRef("a1", id)
		known = err == nil
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	chunks := chunkVersions(t, db, id)
	if known {
		if len(chunks) != 2 {
			t.Fatalf("known blob has %d chunks, want 2", len(chunks))
		}
		wantBlob(t, db, "a1", id, data)
	} else if len(chunks) != 0 {
		t.Fatalf("collected blob left %d chunks", len(chunks))
	}
}
