package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// argonParams are the cost parameters of an argon2id hash.
type argonParams struct {
	memory  uint32 // KiB
	time    uint32 // passes
	threads uint8
}

// defaultParams is the OWASP minimum for argon2id (19 MiB, 2 passes, 1
// lane). It is a variable only so that tests can make hashing cheap.
var defaultParams = argonParams{memory: 19456, time: 2, threads: 1}

const (
	saltLen = 16
	keyLen  = 32

	// Bounds on what CheckPassword accepts from a stored hash, so that a
	// damaged record cannot make one login allocate gigabytes or run for
	// minutes.
	maxMemory  = 1 << 20 // KiB, 1 GiB
	maxTime    = 64
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// argonRuns counts argon2 computations, so tests can tell whether a login
// was served from the cache.
var argonRuns atomic.Int64

func derive(p argonParams, password string, salt []byte, n uint32) []byte {
	argonRuns.Add(1)
	return argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, n)
}

// b64 is the encoding of salt and hash in the PHC string format.
var b64 = base64.RawStdEncoding

func formatHash(p argonParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// HashPassword returns an argon2id hash of password in the PHC string format
// ($argon2id$v=19$m=19456,t=2,p=1$salt$hash) with a random 16-byte salt.
// It refuses an empty password.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("auth: empty password")
	}
	p := defaultParams
	salt := randomBytes(saltLen)
	return formatHash(p, salt, derive(p, password, salt, keyLen)), nil
}

// CheckPassword reports whether password matches hash, a string made by
// HashPassword. The cost parameters are read from hash, and the derived keys
// are compared in constant time. A malformed hash, or one whose parameters
// are out of reasonable bounds, matches nothing.
func CheckPassword(hash, password string) bool {
	p, salt, want, ok := parseHash(hash)
	if !ok || password == "" {
		return false
	}
	got := derive(p, password, salt, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// parseHash splits a PHC argon2id string into its parameters, salt and key.
func parseHash(hash string) (p argonParams, salt, key []byte, ok bool) {
	f := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, false
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return p, nil, nil, false
	}
	m, okM := param(ps[0], "m=", 32)
	t, okT := param(ps[1], "t=", 32)
	th, okP := param(ps[2], "p=", 8)
	if !okM || !okT || !okP {
		return p, nil, nil, false
	}
	p = argonParams{memory: uint32(m), time: uint32(t), threads: uint8(th)}
	// argon2 needs at least 8 KiB of memory per lane.
	if p.threads == 0 || p.time == 0 || p.time > maxTime || p.memory < 8*uint32(p.threads) || p.memory > maxMemory {
		return p, nil, nil, false
	}
	salt, err := b64.Strict().DecodeString(f[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return p, nil, nil, false
	}
	key, err = b64.Strict().DecodeString(f[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return p, nil, nil, false
	}
	return p, salt, key, true
}

// param parses "name=decimal" into an unsigned number of the given bit size.
func param(s, name string, bits int) (uint64, bool) {
	v, ok := strings.CutPrefix(s, name)
	if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, bits)
	return n, err == nil
}

// randomBytes returns n bytes from the system's secure random source.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	// Since Go 1.24 crypto/rand.Read never returns an error: it crashes the
	// program if the system source fails. An error here is a broken
	// invariant.
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("auth: crypto/rand: %v", err))
	}
	return b
}
