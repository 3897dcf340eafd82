package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// TokenPrefix starts every token secret NewToken makes, so a leaked token is
// easy to recognise (by people and by secret scanners).
const TokenPrefix = "jmapd_"

// NewToken returns a new bearer token secret, TokenPrefix followed by 32
// random bytes in unpadded base64url, and secretHash, the HashToken of it,
// which is what the store keeps. The secret is shown to its owner once and
// never stored. The error is always nil; it is there for engines of
// randomness that can fail.
func NewToken() (secret, secretHash string, err error) {
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(32))
	return secret, HashToken(secret), nil
}

// HashToken returns the hash under which the store keeps a token secret: the
// lower-case hex SHA-256 of it. A token has 256 random bits, so a fast hash
// is enough; no salt or argon2 is needed.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// passwordAlphabet has the lower-case letters and digits that cannot be
// mistaken for one another (no 0/o, 1/l/i).
const passwordAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// GeneratePassword returns a new random password that is easy to read and
// type: four groups of five lower-case letters and digits joined by '-'
// (about 99 bits of entropy), such as "k3mzq-7hv2p-tw9ra-xe4nc".
func GeneratePassword() string {
	const groups, size = 4, 5
	var b strings.Builder
	b.Grow(groups*size + groups - 1)
	// Rejection sampling keeps every letter equally likely: bytes at or
	// above the largest multiple of the alphabet size are drawn again.
	limit := byte(256 - 256%len(passwordAlphabet))
	n := 0
	for n < groups*size {
		for _, c := range randomBytes(groups * size) {
			if c >= limit {
				continue
			}
			if n > 0 && n%size == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(passwordAlphabet[int(c)%len(passwordAlphabet)])
			if n++; n == groups*size {
				break
			}
		}
	}
	return b.String()
}
