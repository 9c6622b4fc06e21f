package fieldcrypto

import (
	"encoding/json"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"", "secret123", "abc:def", "mailto:x", "tcp://user:pw@host:1883", "tcp://u:p@[::1]:1883",
	"tcp://user:p@ss@host:1883", "tcp://user:p%40ss@host:1883", "tcp://p:@host:1883", "tcp://u:p%zz@h:1",
	"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "a b c", "\x00\xff\xfe", "ü€😀",
	specURI, specSecret, "encrypted_", "encrypted_encrypted_", "encrypted_AAAA", "encrypted_A",
	"tcp://u:encrypted_@h:1", "tcp://u:encrypted_AAECAwQFBgcICQoL@h:1", `{"uri":"x"}`, `{"uri":{"a":1}}`,
	`{"connection":{"uri":"encrypted_AAAA"}}`, `{"uri":"encrypted_AAECAwQFBgcICQoLh8AJa947tfZCb9ebKKULN4ljSUc8OaqXmKrAo9U="}`,
	`{"credentials":{"password":"\ud800"}}`, `{"uri":"a","uri":"tcp://u:p@h:1"}`, `[1,2]`, `{`, `{"a":[{"b":"}"}],"uri":"q"}`,
}

// FuzzDecrypt: no input makes decryption, classification or document
// rewriting panic, and successful rewrites are valid JSON.
func FuzzDecrypt(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	c := mustCipher(f, testKey)
	fields := &Fields{Current: c, Old: otherKey(f)}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = c.DecryptString(s)
		_, _ = c.DecryptValue(s)
		_ = IsEncryptedValue(s)
		_, _, _ = classify(s)

		for _, doc := range [][]byte{[]byte(s), docWith(t, s)} {
			for _, prefix := range []string{"", "/connection"} {
				if out, err := fields.Decrypt(doc, prefix); err == nil && !json.Valid(out) {
					t.Fatalf("invalid JSON out of %q", doc)
				}
				_ = fields.IsEncrypted(doc, prefix)
				for _, tr := range []Transform{fields.InitialEncryption, fields.RotateKey, fields.DisableEncryption} {
					if out, _, err := tr(doc, prefix); err == nil && !json.Valid(out) {
						t.Fatalf("invalid JSON out of %q", doc)
					}
				}
			}
		}
	})
}

// FuzzEncryptRoundTrip: encrypting then decrypting gives the original, for
// single strings and for documents (except where Ditto's own URI rebuild
// loses text, see replacePassword).
func FuzzEncryptRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	c := mustCipher(f, testKey)
	fields := &Fields{Current: c}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := c.EncryptString(s)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := c.DecryptString(e); err != nil || d != s {
			t.Fatalf("string round trip: %v", err)
		}

		doc := docWith(t, s)
		var v struct{ URI string }
		_ = json.Unmarshal(doc, &v) // s as JSON carries it (invalid UTF-8 replaced)
		enc, err := fields.Encrypt(doc, "")
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(enc) {
			t.Fatal("invalid JSON")
		}
		// The URI rule holds at every pointer, not only at /uri.
		kind, ui, at := classify(v.URI)
		lossy := kind == kindPassword && strings.Index(v.URI, ui) != at
		if got := valueAt(t, enc, "credentials", "password"); (kind == kindKeep) != (got == v.URI) ||
			(kind == kindWhole) != strings.HasPrefix(got, Prefix) || (kind != kindKeep && !lossy) != IsEncryptedValue(got) {
			t.Fatalf("kind %d value %q encrypted as %q", kind, v.URI, got)
		}
		dec, err := fields.Decrypt(enc, "")
		if err != nil {
			t.Fatalf("decrypt: %v", err)
		}
		for _, p := range [][]string{{"uri"}, {"credentials", "password"}} {
			if got := valueAt(t, dec, p...); got != v.URI && !lossy {
				t.Fatalf("round trip at %v: %q -> %q", p, v.URI, got)
			}
		}
	})
}

// docWith puts s at /uri and /credentials/password.
func docWith(t *testing.T, s string) []byte {
	b, err := json.Marshal(map[string]any{"uri": s, "credentials": map[string]any{"password": s}, "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
