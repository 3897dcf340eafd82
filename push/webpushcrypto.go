package push

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// recordSize is the aes128gcm record size the server writes: one record
// holds every push message (RFC 8291 §4).
const recordSize = 4096

// maxPushPlaintext is the most a push message may carry: RFC 8291 §4
// guarantees 3993 octets through every push service.
const maxPushPlaintext = 3993

var errPushTooLarge = errors.New("push: message too large for Web Push")

// encryptPush encrypts a push message for a user agent's p256dh key and
// auth secret (RFC 8291 §3.4) as one aes128gcm record (RFC 8188 §2).
func encryptPush(plain, uaPublic, authSecret []byte) ([]byte, error) {
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return encryptPushWith(plain, uaPublic, authSecret, as, salt)
}

// encryptPushWith is encryptPush with the server's ephemeral key and the
// salt given, for the RFC's example.
func encryptPushWith(plain, uaPublic, authSecret []byte, as *ecdh.PrivateKey, salt []byte) ([]byte, error) {
	if len(plain) > maxPushPlaintext {
		return nil, errPushTooLarge
	}
	ua, err := ecdh.P256().NewPublicKey(uaPublic)
	if err != nil {
		return nil, err
	}
	shared, err := as.ECDH(ua)
	if err != nil {
		return nil, err
	}
	asPublic := as.PublicKey().Bytes()
	// key_info = "WebPush: info" || 0x00 || ua_public || as_public
	keyInfo := make([]byte, 0, 14+65+65)
	keyInfo = append(keyInfo, "WebPush: info\x00"...)
	keyInfo = append(keyInfo, uaPublic...)
	keyInfo = append(keyInfo, asPublic...)
	ikm, err := hkdf.Key(sha256.New, shared, authSecret, string(keyInfo), 32)
	if err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// Header (RFC 8188 §2.1): salt, record size, key id length and the
	// server's public key as key id (RFC 8291 §4).
	out := make([]byte, 0, 16+4+1+len(asPublic)+len(plain)+1+gcm.Overhead())
	out = append(out, salt...)
	out = binary.BigEndian.AppendUint32(out, recordSize)
	out = append(out, byte(len(asPublic)))
	out = append(out, asPublic...)
	// The last (and only) record ends with the delimiter 0x02, no padding
	// (RFC 8188 §2). The sequence number is 0, so the nonce is NONCE.
	rec := make([]byte, 0, len(plain)+1)
	rec = append(rec, plain...)
	rec = append(rec, 2)
	return gcm.Seal(out, nonce, rec, nil), nil
}
