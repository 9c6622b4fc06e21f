package sshtunnel

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func testKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// x/crypto's own fingerprint functions are the independent reference for
// MD5 and SHA256; the sshd tests check ssh-keygen's output as well.
func TestHostKeyCallbackFingerprints(t *testing.T) {
	key, other := testKey(t), testKey(t)
	sha := ssh.FingerprintSHA256(key)    // "SHA256:…"
	md5 := ssh.FingerprintLegacyMD5(key) // "xx:xx:…"
	for _, tc := range []struct {
		name  string
		known string
		ok    bool
	}{
		{"sha256", sha, true},
		{"sha256 lower-case prefix", "sha256:" + strings.TrimPrefix(sha, "SHA256:"), true},
		{"sha256 with dash", "SHA-256:" + strings.TrimPrefix(sha, "SHA256:"), true},
		{"sha256 padded", sha + "=", true},
		{"md5", "MD5:" + md5, true},
		{"md5 upper-case", "MD5:" + strings.ToUpper(md5), true},
		{"md5 without prefix", md5, true},
		{"sha256 value named sha512", "SHA512:" + strings.TrimPrefix(sha, "SHA256:"), false},
		{"sha256 case changed", "SHA256:" + strings.ToLower(strings.TrimPrefix(sha, "SHA256:")), false},
		{"other key", ssh.FingerprintSHA256(other), false},
		{"empty", "", false},
		{"garbage", "not a fingerprint", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := hostKeyCallback(true, []string{tc.known})("h", nil, key)
			if (err == nil) != tc.ok {
				t.Fatalf("known %q: err %v, want ok=%v", tc.known, err, tc.ok)
			}
			if err != nil && err != errHostKey {
				t.Fatalf("err %v, want errHostKey", err)
			}
		})
	}
	if err := hostKeyCallback(true, []string{"SHA256:nope", sha})("h", nil, key); err != nil {
		t.Fatalf("one matching entry among several: %v", err)
	}
	if err := hostKeyCallback(true, nil)("h", nil, key); err != errHostKey {
		t.Fatalf("no known hosts: %v", err)
	}
	if err := hostKeyCallback(false, nil)("h", nil, key); err != nil {
		t.Fatalf("validateHost false: %v", err)
	}
}

// The other digests Ditto accepts, each matching only its own value.
func TestFingerprintDigests(t *testing.T) {
	key := testKey(t)
	for _, d := range []string{"SHA1", "SHA224", "SHA384", "SHA512"} {
		fp := fingerprint{digest: d}
		v := fp.of(key)
		if strings.Contains(v, "=") || v == "" {
			t.Fatalf("%s: %q is not unpadded base64", d, v)
		}
		if err := hostKeyCallback(true, []string{d + ":" + v})("h", nil, key); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if err := hostKeyCallback(true, []string{"SHA256:" + v})("h", nil, key); err == nil {
			t.Fatalf("%s value accepted as SHA256", d)
		}
	}
}

func FuzzParseFingerprint(f *testing.F) {
	for _, s := range []string{"MD5:e0:3a:34:1c:68:ed:c6:bc:7c:ca:a8:67:c7:45:2b:19", "SHA256:MEULjymCqsBH6TkmQzKmA+G2qd+AJwarKwr84vUsQ+Y",
		"sha-512:x", ":", "", "SHA1:", "md5:AA"} {
		f.Add(s)
	}
	key, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	f.Fuzz(func(t *testing.T, s string) {
		fp, ok := parseFingerprint(s)
		if !ok {
			return
		}
		if _, known := digests[fp.digest]; !known {
			t.Fatalf("%q: digest %q", s, fp.digest)
		}
		// a parsed entry matches exactly the keys whose fingerprint it is
		if got := fp.of(key); (got == fp.value) != (hostKeyCallback(true, []string{s})("h", nil, key) == nil) {
			t.Fatalf("%q: callback disagrees with the fingerprint %q", s, got)
		}
	})
}
