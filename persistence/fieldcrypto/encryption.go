// Package fieldcrypto reads and writes the encrypted connection fields that
// Eclipse Ditto 3.9 stores in its connectivity journal and snapshots
// (AES-256-GCM, "encrypted_" + URL-safe base64 of IV || ciphertext || tag),
// so documents written here and by Ditto are interchangeable.
//
// Which values get encrypted, and how much of them, follows Ditto's decision
// exactly, including its reliance on java.net.URI parsing (see uri.go).
// Nothing in this package puts a secret, plaintext or ciphertext, into an
// error message.
package fieldcrypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Prefix marks an encrypted value (or an encrypted URI password).
const Prefix = "encrypted_"

// DefaultPointers are the json-pointers of Ditto's default configuration
// (ditto.connectivity.connection.encryption.json-pointers).
var DefaultPointers = []string{
	"/uri",
	"/credentials/key",
	"/sshTunnel/credentials/password",
	"/sshTunnel/credentials/privateKey",
	"/credentials/parameters/accessKey",
	"/credentials/parameters/secretKey",
	"/credentials/parameters/sharedKey",
	"/credentials/clientSecret",
	"/credentials/password",
}

const (
	keySize = 32 // AES-256, the only size Ditto accepts
	ivSize  = 12 // GCM standard nonce, as Ditto writes it
	tagSize = 16 // 128-bit tag
)

var (
	// ErrInvalidKey: a configured key is not URL-safe base64 of 32 bytes.
	ErrInvalidKey = errors.New("encryption: invalid key")
	// ErrNotEncrypted: DecryptString got a value without Prefix.
	ErrNotEncrypted = errors.New("encryption: value is not encrypted")
	// ErrDecrypt: a value could not be decrypted (wrong key, damaged data).
	ErrDecrypt = errors.New("encryption: decryption failed")
	// ErrNoKey: the operation needs a key that is not configured.
	ErrNoKey = errors.New("encryption: no key configured")
)

// ParseKey decodes a configured key the way Ditto does (Java's
// Base64.getUrlDecoder): URL-safe alphabet, padding optional, '+' and '/'
// rejected. The key must decode to 32 bytes.
func ParseKey(s string) ([]byte, error) {
	k, err := decodeURLBase64(s)
	if err != nil {
		// The decoder error carries only an offset; still, keep key material
		// out of the message entirely.
		return nil, fmt.Errorf("%w: not URL-safe base64 (alphabet A-Z a-z 0-9 - _, optional = padding)", ErrInvalidKey)
	}
	if len(k) != keySize {
		return nil, fmt.Errorf("%w: 256 bits required, got %d bits", ErrInvalidKey, len(k)*8)
	}
	return k, nil
}

// decodeURLBase64 accepts exactly what java.util.Base64's URL decoder
// accepts: padded or unpadded input, nothing after the padding, no
// whitespace. Go's decoders skip '\r' and '\n', Java's do not, so those are
// rejected up front to make both sides agree on what is valid.
func decodeURLBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, base64.CorruptInputError(strings.IndexAny(s, "\r\n"))
	}
	if strings.IndexByte(s, '=') >= 0 {
		return base64.URLEncoding.DecodeString(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// Cipher encrypts and decrypts single values with one key. It is safe for
// concurrent use.
type Cipher struct {
	aead cipher.AEAD
	// iv is where nonces come from; nil means crypto/rand. Tests set it to
	// reproduce fixed-IV vectors.
	iv io.Reader
}

// NewCipher returns a Cipher for a 32-byte AES-256 key (see ParseKey).
func NewCipher(key []byte) (*Cipher, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("%w: 256 bits required, got %d bits", ErrInvalidKey, len(key)*8)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	aead, err := cipher.NewGCMWithNonceSize(block, ivSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return &Cipher{aead: aead}, nil
}

// EncryptString returns Prefix + base64url-with-padding(IV || ciphertext ||
// tag) of the UTF-8 bytes of plain, with a fresh random 12-byte IV and no
// associated data — Ditto's layout.
func (c *Cipher) EncryptString(plain string) (string, error) {
	src := c.iv
	if src == nil {
		src = rand.Reader
	}
	buf := make([]byte, ivSize, ivSize+len(plain)+tagSize)
	var out []byte // Prefix + base64 of buf, one allocation
	for {
		if _, err := io.ReadFull(src, buf[:ivSize]); err != nil {
			return "", fmt.Errorf("encryption: reading IV: %w", err)
		}
		sealed := c.aead.Seal(buf[:ivSize], buf[:ivSize], []byte(plain), nil)
		if n := len(Prefix) + base64.URLEncoding.EncodedLen(len(sealed)); cap(out) < n {
			out = make([]byte, n)
			copy(out, Prefix)
		} else {
			out = out[:n]
		}
		body := out[len(Prefix):]
		base64.URLEncoding.Encode(body, sealed)
		// Ditto strips every occurrence of the prefix before decoding, not
		// just the leading one; a body that happened to contain it would be
		// unreadable there (and here). Vanishingly rare, but a new IV fixes it.
		if !bytes.Contains(body, prefixBytes) {
			return string(out), nil
		}
	}
}

var prefixBytes = []byte(Prefix)

// DecryptString reverses EncryptString. It accepts padded and unpadded
// base64url bodies, as Java's decoder does.
func (c *Cipher) DecryptString(v string) (string, error) {
	if !strings.HasPrefix(v, Prefix) {
		return "", ErrNotEncrypted
	}
	// Like Ditto: remove every occurrence of the prefix (String.replace), so
	// both sides reject or accept the same inputs.
	body := v[len(Prefix):]
	if strings.Contains(body, Prefix) {
		body = strings.ReplaceAll(body, Prefix, "")
	}
	raw, err := decodeURLBase64(body)
	if err != nil {
		return "", fmt.Errorf("%w: body is not URL-safe base64", ErrDecrypt)
	}
	if len(raw) < ivSize+tagSize {
		return "", fmt.Errorf("%w: value too short", ErrDecrypt)
	}
	// decrypted in place: the plaintext overwrites the ciphertext
	plain, err := c.aead.Open(raw[ivSize:ivSize], raw[:ivSize], raw[ivSize:], nil)
	if err != nil {
		return "", fmt.Errorf("%w: wrong key or damaged value", ErrDecrypt)
	}
	return string(plain), nil
}
