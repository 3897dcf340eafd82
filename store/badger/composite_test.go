package badger_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jmapd/jmapd/store"
	"github.com/jmapd/jmapd/store/badger"
)

// uploadBatch runs UploadBatch as acct and fails the test on error.
func uploadBatch(t testing.TB, db store.Store, acct store.AccountID, in ...store.BlobInput) []store.BlobInfo {
	t.Helper()
	infos, err := db.Blobs().UploadBatch(context.Background(), acct, in)
	if err != nil {
		t.Fatalf("upload batch: %v", err)
	}
	return infos
}

// TestBlob_CompositeReadsAsPrefixAndBase checks that a composite blob has
// the id and size of its whole content and reads as prefix then base, in
// any range, including one across the seam and one beyond a chunk of the
// base.
func TestBlob_CompositeReadsAsPrefixAndBase(t *testing.T) {
	db := openStore(t, badger.Options{})
	base := blobBytes(3*mib/2, 11)
	prefix := []byte("Delivered-To: bob@example.test\r\n")
	whole := append(append([]byte{}, prefix...), base...)
	infos := uploadBatch(t, db, "a1",
		store.BlobInput{Type: "message/rfc822", Data: base},
		store.BlobInput{Type: "message/rfc822", Data: prefix, Base: blobID(base)})
	c := infos[1]
	if c.ID != blobID(whole) || c.Size != int64(len(whole)) || c.Type != "message/rfc822" {
		t.Fatalf("composite info = %+v, want id %s and size %d", c, blobID(whole), len(whole))
	}
	wantBlob(t, db, "a1", c.ID, whole)
	if id := store.CompositeID(prefix, base); id != c.ID {
		t.Errorf("CompositeID = %s, want %s", id, c.ID)
	}
	p := int64(len(prefix))
	for _, r := range [][2]int64{{0, 5}, {3, p - 3}, {p - 4, 10}, {p, 100}, {p + mib - 2, 7}, {p + 5, -1}, {int64(len(whole)) - 3, 10}} {
		got, err := readBlob(db, "a1", c.ID, r[0], r[1])
		if err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		end := int64(len(whole))
		if r[1] >= 0 {
			end = min(end, r[0]+r[1])
		}
		if !bytes.Equal(got, whole[r[0]:end]) {
			t.Errorf("range %v: got %d bytes, differing from the whole content's", r, len(got))
		}
	}
	var access store.BlobInfo
	view(t, db, func(tx store.Tx) error {
		var err error
		access, err = tx.BlobAccess("a1", c.ID)
		return err
	})
	if access.Size != int64(len(whole)) {
		t.Errorf("BlobAccess size = %d, want %d", access.Size, len(whole))
	}
	// Uploading the whole bytes plainly finds the same blob.
	if again := upload(t, db, "a2", "", whole); again.ID != c.ID {
		t.Errorf("plain upload of the same bytes = %s, want %s", again.ID, c.ID)
	}
	wantBlob(t, db, "a2", c.ID, whole)
	// A composite of a composite reads as both prefixes and the base.
	outer := []byte("Received: by x\r\n")
	infos = uploadBatch(t, db, "a1", store.BlobInput{Data: outer, Base: c.ID})
	wantBlob(t, db, "a1", infos[0].ID, append(append([]byte{}, outer...), whole...))
}

// TestBlob_CompositeNeedsReadableBase checks that a composite cannot be
// made on a blob the account may not read, and that nothing is stored.
func TestBlob_CompositeNeedsReadableBase(t *testing.T) {
	db := openStore(t, badger.Options{})
	base := blobBytes(2000, 12)
	upload(t, db, "a1", "", base)
	_, err := db.Blobs().UploadBatch(context.Background(), "a2", []store.BlobInput{{Data: []byte("X: y\r\n"), Base: blobID(base)}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("composite on another account's blob: %v, want store.ErrNotFound", err)
	}
	wantNoBlob(t, db, "a2", blobID(append([]byte("X: y\r\n"), base...)))
	if _, err := db.Blobs().UploadBatch(context.Background(), "a1", []store.BlobInput{{Data: []byte("X"), Base: "Gnot-an-id"}}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("composite on a bad id: %v, want store.ErrNotFound", err)
	}
}

// TestBlob_CompositesKeepTheirBase checks collection: the base stays while
// any composite on it is held, dropping one composite leaves the others
// readable, and when the last goes the base content goes with it.
func TestBlob_CompositesKeepTheirBase(t *testing.T) {
	db := openStore(t, badger.Options{BlobGrace: time.Minute})
	base := blobBytes(20_000, 13)
	infos := uploadBatch(t, db, "s",
		store.BlobInput{Data: base},
		store.BlobInput{Data: []byte("Delivered-To: r1\r\n"), Base: blobID(base)},
		store.BlobInput{Data: []byte("Delivered-To: r2\r\n"), Base: blobID(base)})
	c1, c2 := infos[1], infos[2]
	update(t, db, func(tx store.Tx) error {
		if err := tx.BlobRef("r1", c1.ID); err != nil {
			return err
		}
		return tx.BlobRef("r2", c2.ID)
	})
	later := time.Now().Add(time.Hour)
	// The grants end; the references hold the composites and they the base.
	collect(t, db, later)
	wantBlob(t, db, "r1", c1.ID, append([]byte("Delivered-To: r1\r\n"), base...))
	wantBlob(t, db, "r2", c2.ID, append([]byte("Delivered-To: r2\r\n"), base...))
	wantNoBlob(t, db, "s", infos[0].ID)

	update(t, db, func(tx store.Tx) error { return tx.BlobUnref("r1", c1.ID) })
	if n := collect(t, db, later); n != 1 {
		t.Fatalf("collect after r1 let go removed %d, want 1", n)
	}
	wantNoBlob(t, db, "r1", c1.ID)
	wantBlob(t, db, "r2", c2.ID, append([]byte("Delivered-To: r2\r\n"), base...))

	update(t, db, func(tx store.Tx) error { return tx.BlobUnref("r2", c2.ID) })
	collect(t, db, later)
	wantNoBlob(t, db, "r2", c2.ID)
	if v := chunkVersions(t, db, infos[0].ID); len(v) != 0 {
		t.Fatalf("%d chunks of the base remain after its last composite went", len(v))
	}
}

// TestBlob_PutBlobsInTransaction checks that blobs stored within a
// transaction, composites among them, read back once it commits, that a
// transaction that fails leaves none, and that content too large for one
// transaction is refused.
func TestBlob_PutBlobsInTransaction(t *testing.T) {
	db := openStore(t, badger.Options{})
	base := blobBytes(20_000, 14)
	prefix := []byte("Delivered-To: r1\r\n")
	var infos []store.BlobInfo
	update(t, db, func(tx store.Tx) error {
		var err error
		// The caller may give the ids it worked out.
		infos, err = tx.(store.BlobTx).PutBlobs("s", []store.BlobInput{{Data: base, ID: store.BlobIDOf(base)},
			{Data: prefix, Base: blobID(base), ID: store.CompositeID(prefix, base)}})
		return err
	})
	whole := append(append([]byte{}, prefix...), base...)
	if infos[1].ID != blobID(whole) || infos[1].Size != int64(len(whole)) {
		t.Fatalf("composite info %+v", infos[1])
	}
	wantBlob(t, db, "s", infos[0].ID, base)
	wantBlob(t, db, "s", infos[1].ID, whole)

	other := blobBytes(5000, 15)
	_, err := db.Update(context.Background(), func(tx store.Tx) error {
		if _, err := tx.(store.BlobTx).PutBlobs("s", []store.BlobInput{{Data: other}, {Data: prefix, Base: blobID(other)}}); err != nil {
			return err
		}
		return errors.New("refused")
	})
	if err == nil {
		t.Fatal("the failing transaction committed")
	}
	wantNoBlob(t, db, "s", blobID(other))
	wantNoBlob(t, db, "s", blobID(append(append([]byte{}, prefix...), other...)))

	_, err = db.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.(store.BlobTx).PutBlobs("s", []store.BlobInput{{Data: blobBytes(5*mib, 16)}})
		return err
	})
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("5 MiB in one transaction: %v, want store.ErrTooLarge", err)
	}
	// A composite on a blob the account cannot read is refused.
	_, err = db.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.(store.BlobTx).PutBlobs("x", []store.BlobInput{{Data: prefix, Base: blobID(base)}})
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("composite on another account's blob: %v, want store.ErrNotFound", err)
	}
}

// TestBlob_SameCompositeTwiceInOneBatch checks that a composite given twice
// in one batch (the same recipient reached through two addresses) is one
// blob holding one reference on its base: once its last holder lets go,
// base and composite are collected.
func TestBlob_SameCompositeTwiceInOneBatch(t *testing.T) {
	db := openStore(t, badger.Options{BlobGrace: time.Minute})
	base := blobBytes(3000, 17)
	prefix := []byte("Delivered-To: r1\r\n")
	var infos []store.BlobInfo
	update(t, db, func(tx store.Tx) error {
		var err error
		infos, err = tx.(store.BlobTx).PutBlobs("s", []store.BlobInput{{Data: base},
			{Data: prefix, Base: blobID(base)}, {Data: prefix, Base: blobID(base)}})
		if err != nil {
			return err
		}
		return tx.BlobRef("r1", infos[1].ID)
	})
	if infos[1].ID != infos[2].ID {
		t.Fatalf("the same composite got ids %s and %s", infos[1].ID, infos[2].ID)
	}
	later := time.Now().Add(time.Hour)
	collect(t, db, later)
	wantBlob(t, db, "r1", infos[1].ID, append(append([]byte{}, prefix...), base...))
	update(t, db, func(tx store.Tx) error { return tx.BlobUnref("r1", infos[1].ID) })
	if n := collect(t, db, later); n != 1 {
		t.Fatalf("collect removed %d, want the composite", n)
	}
	if v := chunkVersions(t, db, infos[0].ID); len(v) != 0 {
		t.Fatalf("%d chunks of the base remain", len(v))
	}
}

// Held blobs, as a delivery stores its copies in the delivering
// transaction, get no upload grant: the sender cannot read the
// recipients' copies, Collect finds nothing to do while the copies are
// referenced, and once their references are dropped the copies and the
// message they stand on are collected.
func TestBlob_HeldCopiesLeaveNothingToCollect(t *testing.T) {
	db := openStore(t, badger.Options{BlobGrace: time.Minute})
	raw := blobBytes(3000, 21)
	traces := [][]byte{[]byte("Delivered-To: a@x\r\n"), []byte("Delivered-To: b@x\r\n")}
	in := []store.BlobInput{{Type: "message/rfc822", Data: raw, ID: blobID(raw), Held: true}}
	for _, tr := range traces {
		in = append(in, store.BlobInput{Type: "message/rfc822", Data: tr, Base: blobID(raw), ID: store.CompositeID(tr, raw), Held: true})
	}
	var infos []store.BlobInfo
	update(t, db, func(tx store.Tx) error {
		var err error
		if infos, err = tx.(store.BlobTx).PutBlobs("sender", in); err != nil {
			return err
		}
		for i, acct := range []store.AccountID{"ra", "rb"} {
			if err := tx.BlobRef(acct, infos[i+1].ID); err != nil {
				return err
			}
		}
		return nil
	})
	for i, acct := range []store.AccountID{"ra", "rb"} {
		wantBlob(t, db, acct, infos[i+1].ID, append(append([]byte{}, traces[i]...), raw...))
		wantNoBlob(t, db, "sender", infos[i+1].ID)
	}
	wantNoBlob(t, db, "sender", infos[0].ID)
	if n := collect(t, db, time.Now().Add(time.Hour)); n != 0 {
		t.Fatalf("collect removed %d blobs still referenced", n)
	}
	update(t, db, func(tx store.Tx) error {
		for i, acct := range []store.AccountID{"ra", "rb"} {
			if err := tx.BlobUnref(acct, infos[i+1].ID); err != nil {
				return err
			}
		}
		return nil
	})
	collect(t, db, time.Now().Add(time.Hour))
	if v := chunkVersions(t, db, infos[0].ID); len(v) != 0 {
		t.Fatalf("%d chunks of the message remain after its copies went", len(v))
	}
}

// A transaction that makes held blobs and references them (a delivery)
// counts the references without reading them; the counts it leaves are
// those of references made one transaction each: each unref succeeds once
// per ref, and a copy whose last reference goes is collected with the
// message it stood on.
func TestBlob_ReferencesOfBlobsMadeInTheTransaction(t *testing.T) {
	db := openStore(t, badger.Options{BlobGrace: time.Minute})
	base := blobBytes(20_000, 17)
	prefix := []byte("Delivered-To: r1\r\n")
	var ids []store.BlobID
	update(t, db, func(tx store.Tx) error {
		infos, err := tx.(store.BlobTx).PutBlobs("s", []store.BlobInput{{Data: base, Held: true},
			{Data: prefix, Base: blobID(base), Held: true}})
		if err != nil {
			return err
		}
		ids = []store.BlobID{infos[0].ID, infos[1].ID}
		for _, r := range []struct {
			acct store.AccountID
			id   store.BlobID
		}{{"r1", ids[1]}, {"r1", ids[1]}, {"r2", ids[1]}, {"r2", ids[0]}} {
			if err := tx.BlobRef(r.acct, r.id); err != nil {
				return err
			}
		}
		return tx.BlobUnref("r2", ids[1])
	})
	unref := func(acct store.AccountID, id store.BlobID) error {
		_, err := db.Update(context.Background(), func(tx store.Tx) error { return tx.BlobUnref(acct, id) })
		return err
	}
	// r1 holds two references on the copy, r2 none; r2 holds one on the
	// message itself.
	for i, want := range []error{nil, nil, store.ErrNotFound} {
		if err := unref("r1", ids[1]); !errors.Is(err, want) {
			t.Fatalf("unref %d of r1's copy: %v, want %v", i+1, err, want)
		}
	}
	if err := unref("r2", ids[1]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("r2's copy was unreferenced in its transaction: %v", err)
	}
	wantBlob(t, db, "r2", ids[0], base)
	if err := unref("r2", ids[0]); err != nil {
		t.Fatal(err)
	}
	// The copy goes, and with it the message it stood on.
	if n := collect(t, db, time.Now().Add(time.Hour)); n != 1 {
		t.Errorf("collect removed %d blobs, want the copy (with its base)", n)
	}
	wantNoBlob(t, db, "r1", ids[1])
	wantNoBlob(t, db, "r2", ids[0])
}
