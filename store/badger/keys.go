package badger

import (
	"encoding/binary"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/jmapd/jmapd/store"
)

const sep = "\x00"

func u64(n uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return string(b[:])
}

func objPrefix(acct store.AccountID, typ string) []byte {
	return []byte("o" + sep + string(acct) + sep + typ + sep)
}

func objKey(acct store.AccountID, typ, id string) []byte {
	return append(objPrefix(acct, typ), id...)
}

func stateKey(acct store.AccountID, typ string) []byte {
	return []byte("s" + sep + string(acct) + sep + typ)
}

func changePrefix(acct store.AccountID, typ string) []byte {
	return []byte("c" + sep + string(acct) + sep + typ + sep)
}

func changeKey(acct store.AccountID, typ string, st store.State) []byte {
	return append(changePrefix(acct, typ), u64(uint64(st))...)
}

func changeMinKey(acct store.AccountID, typ string) []byte {
	return []byte("cm" + sep + string(acct) + sep + typ)
}

func metaKey(k string) []byte { return []byte("m" + sep + k) }

const metaPrefixLen = 2

func principalEmailKey(email string) []byte { return []byte("pe" + sep + email) }

func passwordKey(id store.PrincipalID) []byte { return []byte("pw" + sep + string(id)) }

func tokenKey(secretHash string) []byte { return []byte("tk" + sep + secretHash) }

func tokenPrincipalPrefix(id store.PrincipalID) []byte {
	return []byte("tp" + sep + string(id) + sep)
}

func tokenPrincipalKey(id store.PrincipalID, tokenID string) []byte {
	return append(tokenPrincipalPrefix(id), tokenID...)
}

func blobDataPrefix(sha string) []byte { return []byte("bd" + sep + sha + sep) }

func blobDataKey(sha string, chunk uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], chunk)
	return append(blobDataPrefix(sha), b[:]...)
}

func blobMetaKey(sha string) []byte { return []byte("bm" + sep + sha) }

func blobRefKey(acct store.AccountID, sha string) []byte {
	return []byte("br" + sep + string(acct) + sep + sha)
}

func blobUploadKey(acct store.AccountID, sha string) []byte {
	return []byte("bu" + sep + string(acct) + sep + sha)
}

const blobExpiryPrefix = "bx" + sep

func blobExpiryKey(expiry int64, acct store.AccountID, sha string) []byte {
	return []byte(blobExpiryPrefix + u64(uint64(expiry)) + sep + string(acct) + sep + sha)
}

var idSequenceKey = []byte("seq" + sep + "id")

func badgerIterOpts(prefix []byte) bdb.IteratorOptions {
	return bdb.IteratorOptions{Prefix: prefix, PrefetchValues: false}
}
