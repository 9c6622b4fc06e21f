package sshtunnel

import (
	"crypto/md5"  //nolint:gosec // MD5 fingerprints are what ssh-keygen -E md5 prints and Ditto accepts
	"crypto/sha1" //nolint:gosec // SHA1 fingerprints likewise
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
)

// errHostKey: the SSH server's host key matches none of knownHosts.
var errHostKey = errors.New("sshtunnel: server key did not validate")

// fingerprint is one knownHosts entry: a digest and its expected value.
type fingerprint struct {
	digest string // "MD5", "SHA1", "SHA224", "SHA256", "SHA384", "SHA512"
	value  string // MD5: lower-case hex pairs joined by ':'; others: unpadded base64
}

// digests are the hash algorithms Ditto accepts in fingerprints.
var digests = map[string]func() hash.Hash{
	"MD5":    md5.New,
	"SHA1":   sha1.New,
	"SHA224": sha256.New224,
	"SHA256": sha256.New,
	"SHA384": sha512.New384,
	"SHA512": sha512.New,
}

// parseFingerprint reads one knownHosts entry in ssh-keygen's format,
// "<ALGORITHM>:<fingerprint>". As Ditto's verifier does, the algorithm is
// case-insensitive ("sha256", "SHA-256" too), an entry without a known
// algorithm prefix is an MD5 fingerprint, MD5 values compare
// case-insensitively and the others exactly (trailing '=' padding ignored).
// ok is false for an entry that cannot match any key.
func parseFingerprint(s string) (fingerprint, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ':'); i > 0 {
		name := strings.ToUpper(strings.ReplaceAll(s[:i], "-", ""))
		if _, ok := digests[name]; ok {
			return normalize(name, s[i+1:])
		}
	}
	return normalize("MD5", s)
}

func normalize(digest, value string) (fingerprint, bool) {
	if digest == "MD5" {
		value = strings.ToLower(value)
	} else {
		value = strings.TrimRight(value, "=")
	}
	return fingerprint{digest: digest, value: value}, value != ""
}

// of is the fingerprint of key with f's digest, in f's notation.
func (f fingerprint) of(key ssh.PublicKey) string {
	h := digests[f.digest]()
	h.Write(key.Marshal())
	sum := h.Sum(nil)
	if f.digest == "MD5" {
		pairs := make([]string, len(sum))
		for i, b := range sum {
			pairs[i] = hex.EncodeToString([]byte{b})
		}
		return strings.Join(pairs, ":")
	}
	return base64.RawStdEncoding.EncodeToString(sum)
}

// hostKeyCallback accepts a host key whose fingerprint is among knownHosts
// (Ditto's FingerprintVerifier); with validate false it accepts any key, as
// Ditto does when validateHost is false.
func hostKeyCallback(validate bool, knownHosts []string) ssh.HostKeyCallback {
	if !validate {
		return ssh.InsecureIgnoreHostKey() //nolint:gosec // the operator asked for it (validateHost=false)
	}
	var fps []fingerprint
	for _, kh := range knownHosts {
		if fp, ok := parseFingerprint(kh); ok {
			fps = append(fps, fp)
		}
	}
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		for _, fp := range fps {
			if fp.of(key) == fp.value {
				return nil
			}
		}
		return errHostKey
	}
}
