package fieldcrypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

// Ditto's public test key, used by the spec's worked example (§2.6).
const testKey = "vJFSTPE9PO2BtZlcMAwNjs8jdFvQCk0Ya9MVdYjRJUU="

// The spec's ciphertexts, made with IVs 000102..0b and 0c0d..17.
const (
	specURI    = "tcp://user:encrypted_AAECAwQFBgcICQoLh8AJa947tfZCb9ebKKULN4ljSUc8OaqXmKrAo9U=@broker.example.com:1883"
	specSecret = "encrypted_DA0ODxAREhMUFRYXfGi8eb_yyMo8clICmdsbxPqiTxFnXbhj0HHTgIRFLIcrSenh"
)

func mustCipher(t testing.TB, key string) *Cipher {
	t.Helper()
	k, err := ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fixedIVs makes c draw its IVs from the bytes 0, 1, 2, ... in order.
func fixedIVs(c *Cipher, n int) *Cipher {
	b := make([]byte, n*ivSize)
	for i := range b {
		b[i] = byte(i)
	}
	cc := *c
	cc.iv = bytes.NewReader(b)
	return &cc
}

// otherKey is a second valid key (32 bytes 0x01..0x20).
func otherKey(t testing.TB) *Cipher {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i + 1)
	}
	return mustCipher(t, base64.RawURLEncoding.EncodeToString(k))
}

// stdlibDecrypt reads the stored layout independently of the package:
// "encrypted_" + base64url(IV(12) || ciphertext || tag(16)).
func stdlibDecrypt(t *testing.T, key, v string) string {
	t.Helper()
	k, err := base64.URLEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(v, "encrypted_"))
	if err != nil {
		t.Fatalf("body is not padded base64url: %v", err)
	}
	block, _ := aes.NewCipher(k)
	gcm, _ := cipher.NewGCM(block)
	pt, err := gcm.Open(nil, raw[:12], raw[12:], nil)
	if err != nil {
		t.Fatalf("stdlib GCM open: %v", err)
	}
	return string(pt)
}

func TestWorkedExample(t *testing.T) {
	plain := []byte(`{"id":"mqtt-example-1","connectionType":"mqtt","connectionStatus":"open",` +
		`"uri":"tcp://user:passwordValue@broker.example.com:1883",` +
		`"credentials":{"type":"oauth-client-credentials","clientSecret":"s3cr3t-client-secret"}}`)
	want := []byte(`{"id":"mqtt-example-1","connectionType":"mqtt","connectionStatus":"open",` +
		`"uri":"` + specURI + `",` +
		`"credentials":{"type":"oauth-client-credentials","clientSecret":"` + specSecret + `"}}`)
	c := mustCipher(t, testKey)

	t.Run("encrypt with the spec's IVs", func(t *testing.T) {
		f := &Fields{Current: fixedIVs(c, 2)}
		got, err := f.Encrypt(plain, "")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("decrypt the spec's document", func(t *testing.T) {
		got, err := (&Fields{Current: c}).Decrypt(want, "")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("got\n%s\nwant\n%s", got, plain)
		}
	})
	t.Run("single values", func(t *testing.T) {
		s, err := fixedIVs(c, 2).EncryptString("passwordValue")
		if err != nil {
			t.Fatal(err)
		}
		if want := "encrypted_AAECAwQFBgcICQoLh8AJa947tfZCb9ebKKULN4ljSUc8OaqXmKrAo9U="; s != want {
			t.Fatalf("got %s", s)
		}
		// 12 + 13 + 16 = 41 bytes -> 56 base64 characters.
		if n := len(strings.TrimPrefix(s, Prefix)); n != 56 {
			t.Fatalf("body length %d", n)
		}
		pt, err := c.DecryptString(specSecret)
		if err != nil || pt != "s3cr3t-client-secret" {
			t.Fatalf("got %q, %v", pt, err)
		}
	})
	t.Run("journal event", func(t *testing.T) {
		ev := []byte(`{"type":"connectivity.events:connectionCreated","_timestamp":"2026-08-20T10:00:00.123Z",` +
			`"revision":1,"connectionId":"mqtt-example-1","connection":` + string(plain) + `,"__hh":{}}`)
		wantEv := []byte(`{"type":"connectivity.events:connectionCreated","_timestamp":"2026-08-20T10:00:00.123Z",` +
			`"revision":1,"connectionId":"mqtt-example-1","connection":` + string(want) + `,"__hh":{}}`)
		for _, prefix := range []string{"/connection", "connection"} {
			got, err := (&Fields{Current: fixedIVs(c, 2)}).Encrypt(ev, prefix)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wantEv) {
				t.Fatalf("prefix %q: got\n%s", prefix, got)
			}
			back, err := (&Fields{Current: c}).Decrypt(got, prefix)
			if err != nil || !bytes.Equal(back, ev) {
				t.Fatalf("prefix %q: decrypt: %v\n%s", prefix, err, back)
			}
		}
	})
}

func TestRandomIVReadableByStdlib(t *testing.T) {
	c := mustCipher(t, testKey)
	for _, plain := range []string{"", "s3cr3t", "ünïcödé €", strings.Repeat("x", 5000)} {
		a, err := c.EncryptString(plain)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := c.EncryptString(plain)
		if a == b {
			t.Fatal("two encryptions with the same IV")
		}
		if got := stdlibDecrypt(t, testKey, a); got != plain {
			t.Fatalf("stdlib decrypted %q, want %q", got, plain)
		}
	}
}

func TestDecryptString(t *testing.T) {
	c := mustCipher(t, testKey)
	unpadded := strings.TrimRight(specURI[strings.Index(specURI, Prefix):strings.IndexByte(specURI, '@')], "=")
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"padded", "encrypted_AAECAwQFBgcICQoLh8AJa947tfZCb9ebKKULN4ljSUc8OaqXmKrAo9U=", "passwordValue", nil},
		{"unpadded", unpadded, "passwordValue", nil},
		{"no prefix", "AAECAwQFBgcICQoLh8AJa947tfZCb9ebKKULN4ljSUc8OaqXmKrAo9U=", "", ErrNotEncrypted},
		{"wrong padding", unpadded + "==", "", ErrDecrypt},
		{"newline inside", "encrypted_AAECAwQFBgcICQoLh8AJa947tfZC\nb9ebKKULN4ljSUc8OaqXmKrAo9U=", "", ErrDecrypt},
		{"standard alphabet", "encrypted_AAECAwQFBgcICQoL+8AJa947tfZCb9ebKKULN4ljSUc8OaqXmKrAo9U=", "", ErrDecrypt},
		{"too short", "encrypted_AAECAwQFBgcICQoL", "", ErrDecrypt},
		{"empty body", "encrypted_", "", ErrDecrypt},
		{"tampered", "encrypted_AAECAwQFBgcICQoLh8AJa947tfZCb9ebKKULN4ljSUc8OaqXmKrAo9A=", "", ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.DecryptString(tt.in)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	k32 := make([]byte, 32)
	for i := range k32 {
		k32[i] = 0xfb // encodes to '+'/'/' in the standard alphabet, '-'/'_' in the URL one
	}
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"spec key, padded", testKey, true},
		{"spec key, unpadded", strings.TrimRight(testKey, "="), true},
		{"url alphabet", base64.URLEncoding.EncodeToString(k32), true},
		{"plus and slash rejected", base64.StdEncoding.EncodeToString(k32), false},
		{"16 bytes", base64.URLEncoding.EncodeToString(k32[:16]), false},
		{"31 bytes", base64.URLEncoding.EncodeToString(k32[:31]), false},
		{"33 bytes", base64.URLEncoding.EncodeToString(append(k32, 1)), false},
		{"empty", "", false},
		{"surrounding space", " " + testKey, false},
		{"line break", testKey[:20] + "\n" + testKey[20:], false},
		{"bad padding", strings.TrimRight(testKey, "=") + "==", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("not ErrInvalidKey: %v", err)
				}
				if tt.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
					t.Fatal("error contains the key")
				}
			} else if len(k) != 32 {
				t.Fatalf("len %d", len(k))
			}
		})
	}
	if _, err := NewCipher(k32[:16]); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("AES-128 key accepted: %v", err)
	}
}

// valueAt decodes the string at a dotted path, or "<absent>".
func valueAt(t *testing.T, doc []byte, path ...string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "<absent>"
		}
		if v, ok = m[k]; !ok {
			return "<absent>"
		}
	}
	s, ok := v.(string)
	if !ok {
		return "<not a string>"
	}
	return s
}

func TestURIRuleInDocuments(t *testing.T) {
	c := mustCipher(t, testKey)
	f := &Fields{Current: c}
	const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		name, value string
		// encrypted: "whole", "password" (only the password, rest intact) or "none"
		encrypted string
	}{
		{"mqtt", "tcp://user:pw@host:1883", "password"},
		{"amqps vhost", "amqps://user:pw@host:5671/vhost", "password"},
		{"no user-info", "tcp://host:1883", "none"},
		{"user only", "tcp://user@host:1883", "none"},
		{"abc:def", "abc:def", "none"},
		{"secret123", "secret123", "whole"},
		{"pem", pem, "whole"},
		{"spaces", "a secret with spaces", "whole"},
		{"ipv6", "tcp://u:p@[::1]:1883", "password"},
		{"escaped @", "tcp://user:p%40ss@host:1883", "password"},
		{"raw @", "tcp://user:p@ss@host:1883", "none"},
		{"ssh", "ssh://tunnel:pw@ssh.example.com:22", "password"},
		{"opaque", "mailto:x", "none"},
		{"empty", "", "whole"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := json.Marshal(map[string]any{"uri": tt.value})
			enc, err := f.Encrypt(doc, "")
			if err != nil {
				t.Fatal(err)
			}
			got := valueAt(t, enc, "uri")
			switch tt.encrypted {
			case "none":
				if !bytes.Equal(enc, doc) {
					t.Fatalf("changed: %s", enc)
				}
			case "whole":
				if !strings.HasPrefix(got, Prefix) || stdlibDecrypt(t, testKey, got) != tt.value {
					t.Fatalf("not encrypted whole: %q", got)
				}
			case "password":
				_, ui, _ := classify(tt.value)
				user := ui[:strings.IndexByte(ui, ':')+1]
				at := strings.IndexByte(tt.value, '@')
				pre := tt.value[:strings.Index(tt.value, ui)] + user
				if !strings.HasPrefix(got, pre+Prefix) || !strings.HasSuffix(got, tt.value[at:]) {
					t.Fatalf("not a password replacement: %q", got)
				}
				if pw := got[len(pre):strings.IndexByte(got, '@')]; stdlibDecrypt(t, testKey, pw) != uriPassword(ui) {
					t.Fatal("password does not decrypt")
				}
			}
			if tt.encrypted != "none" && !f.IsEncrypted(enc, "") {
				t.Fatal("IsEncrypted false after encryption")
			}
			back, err := f.Decrypt(enc, "")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, doc) {
				t.Fatalf("round trip: %s", back)
			}
		})
	}
}

func TestDecryptFallbackAndErrors(t *testing.T) {
	cur, old := mustCipher(t, testKey), otherKey(t)
	third := mustCipher(t, base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	doc := []byte(`{"uri":"tcp://user:TopSecretPw@host:1883","credentials":{"type":"plain","password":"TopSecretPw2"}}`)
	encOld, err := (&Fields{Current: old}).Encrypt(doc, "")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("old key as fallback", func(t *testing.T) {
		got, err := (&Fields{Current: cur, Old: old}).Decrypt(encOld, "")
		if err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("%v\n%s", err, got)
		}
	})
	t.Run("only the old key configured", func(t *testing.T) {
		got, err := (&Fields{Old: old}).Decrypt(encOld, "")
		if err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("%v\n%s", err, got)
		}
	})
	t.Run("both keys fail", func(t *testing.T) {
		_, err := (&Fields{Current: cur, Old: third}).Decrypt(encOld, "")
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrDecrypt) {
			t.Fatalf("got %v", err)
		}
		if fe.Pointer != "/uri" {
			t.Fatalf("pointer %q", fe.Pointer)
		}
		msg := err.Error()
		pw := valueAt(t, encOld, "uri")
		pw = pw[strings.Index(pw, Prefix):strings.IndexByte(pw, '@')]
		for _, secret := range []string{"TopSecretPw", pw, Prefix} {
			if strings.Contains(msg, secret) {
				t.Fatalf("error %q reveals a value", msg)
			}
		}
		if !strings.Contains(msg, "both") {
			t.Fatalf("message does not say both keys failed: %q", msg)
		}
	})
	t.Run("single key fails", func(t *testing.T) {
		_, err := (&Fields{Current: cur}).Decrypt(encOld, "")
		if !errors.Is(err, ErrDecrypt) || strings.Contains(err.Error(), "TopSecret") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no key at all", func(t *testing.T) {
		if _, err := (&Fields{}).Decrypt(encOld, ""); !errors.Is(err, ErrNoKey) {
			t.Fatalf("got %v", err)
		}
		if _, err := (&Fields{}).Encrypt(doc, ""); !errors.Is(err, ErrNoKey) {
			t.Fatalf("got %v", err)
		}
		// Nothing encrypted: nothing to do, no key needed.
		if got, err := (&Fields{}).Decrypt(doc, ""); err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("plaintext passes through decrypt", func(t *testing.T) {
		got, err := (&Fields{Current: cur}).Decrypt(doc, "")
		if err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("%v %s", err, got)
		}
	})
}

func TestDocumentBytesPreserved(t *testing.T) {
	c := fixedIVs(mustCipher(t, testKey), 10)
	// Numbers as written, odd whitespace, escapes in other values, keys out
	// of Ditto's order, duplicate-free nesting, a pointer that is an object,
	// one that is a number, and an array on the way.
	doc := []byte("{ \"z\" : 1.50e+3, \"big\":12345678901234567890,\n\t\"uri\" : \"tcp://u:p@h:1\" ,\n" +
		`"name":"caf\u00e9 \"q\" <&>","credentials":{"key":{"nested":"x"},"clientSecret":42,"password":"pw"},` +
		`"sshTunnel":[{"credentials":{"password":"nope"}}],"a":[1,2,{"b":null}],"tags":[]}`)
	f := &Fields{Current: c}
	got, err := f.Encrypt(doc, "")
	if err != nil {
		t.Fatal(err)
	}
	uri, pw := valueAt(t, got, "uri"), valueAt(t, got, "credentials", "password")
	if !strings.HasPrefix(uri, "tcp://u:"+Prefix) || !strings.HasPrefix(pw, Prefix) {
		t.Fatalf("not encrypted: %s", got)
	}
	// Everything else is byte-identical: swap the two values back.
	restored := strings.Replace(string(got), uri, "tcp://u:p@h:1", 1)
	restored = strings.Replace(restored, `"`+pw+`"`, `"pw"`, 1)
	if restored != string(doc) {
		t.Fatalf("other bytes changed:\n%s\n%s", restored, doc)
	}
	// Values inside arrays are not addressed (Ditto's pointers have no
	// array steps).
	if !strings.Contains(string(got), `"nope"`) {
		t.Fatal("array element touched")
	}

	t.Run("key order kept", func(t *testing.T) {
		in := []byte(`{"credentials":{"password":"a","type":"plain"},"uri":"s","id":"x"}`)
		out, err := (&Fields{Current: mustCipher(t, testKey)}).Encrypt(in, "")
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		var keys []string
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if s, ok := tok.(string); ok && !strings.HasPrefix(s, Prefix) && s != "plain" && s != "x" {
				keys = append(keys, s)
			}
		}
		if strings.Join(keys, ",") != "credentials,password,type,uri,id" {
			t.Fatalf("order %v", keys)
		}
	})
	t.Run("not an object", func(t *testing.T) {
		for _, bad := range []string{`[]`, `"x"`, `{"uri":`, ``, `{"uri":"a"} x`} {
			if _, err := f.Encrypt([]byte(bad), ""); err == nil {
				t.Fatalf("%q accepted", bad)
			}
		}
	})
	t.Run("invalid pointer", func(t *testing.T) {
		if _, err := (&Fields{Current: c, Pointers: []string{"/a//b"}}).Encrypt([]byte(`{}`), ""); err == nil {
			t.Fatal("double slash accepted")
		}
	})
	t.Run("custom pointers", func(t *testing.T) {
		in := []byte(`{"specificConfig":{"jms.password":"x","a~b":"y"},"uri":"secret"}`)
		out, err := (&Fields{Current: mustCipher(t, testKey), Pointers: []string{"/specificConfig/jms.password", "specificConfig/a~0b/"}}).Encrypt(in, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(valueAt(t, out, "specificConfig", "jms.password"), Prefix) ||
			!strings.HasPrefix(valueAt(t, out, "specificConfig", "a~b"), Prefix) ||
			valueAt(t, out, "uri") != "secret" {
			t.Fatalf("%s", out)
		}
		if out, _ := (&Fields{Current: c, Pointers: []string{}}).Encrypt(in, ""); !bytes.Equal(out, in) {
			t.Fatal("empty pointer list encrypted something")
		}
	})
	t.Run("escaped key matches", func(t *testing.T) {
		in := []byte(`{"\u0075ri":"secret"}`)
		out, err := (&Fields{Current: mustCipher(t, testKey)}).Encrypt(in, "")
		if err != nil || !strings.HasPrefix(valueAt(t, out, "uri"), Prefix) {
			t.Fatalf("%v %s", err, out)
		}
	})
}

// A snapshot s2 and a journal event p as Ditto stores them, with every
// default pointer filled.
func TestSnapshotAndJournalShapes(t *testing.T) {
	conn := `{"__lifecycle":"ACTIVE","id":"c1","name":null,"_revision":3,"_modified":"2026-08-20T10:00:00.120Z",` +
		`"connectionType":"http-push","connectionStatus":"open","uri":"https://u:pw1@api.example.com:443",` +
		`"sources":[],"targets":[{"address":"POST:/x","topics":["_/_/things/twin/events"],"authorizationContext":["a:b"],"headerMapping":{}}],` +
		`"clientCount":1,"failoverEnabled":true,"validateCertificates":true,"processorPoolSize":1,` +
		`"specificConfig":{"parallelism":"2"},` +
		`"credentials":{"type":"hmac","algorithm":"aws4-hmac-sha256","parameters":{"region":"eu","accessKey":"AK","secretKey":"SK","sharedKey":"SH"},"key":"K","clientSecret":"CS","password":"PW"},` +
		`"sshTunnel":{"enabled":true,"uri":"ssh://t:1","credentials":{"type":"plain","username":"u","password":"SP","privateKey":"PK"},"validateHost":false,"knownHosts":[]},` +
		`"tags":["prod"]}`
	event := `{"type":"connectivity.events:connectionModified","_timestamp":"2026-08-20T10:00:00.123Z","revision":3,` +
		`"connectionId":"c1","connection":` + conn + `,"__hh":{}}`
	opened := `{"type":"connectivity.events:connectionOpened","_timestamp":"2026-08-20T10:00:00.123Z","revision":4,"connectionId":"c1","__hh":{}}`
	secrets := map[string][]string{
		"pw1": {"uri"}, "AK": {"credentials", "parameters", "accessKey"}, "SK": {"credentials", "parameters", "secretKey"},
		"SH": {"credentials", "parameters", "sharedKey"}, "K": {"credentials", "key"}, "CS": {"credentials", "clientSecret"},
		"PW": {"credentials", "password"}, "SP": {"sshTunnel", "credentials", "password"}, "PK": {"sshTunnel", "credentials", "privateKey"},
	}
	f := &Fields{Current: mustCipher(t, testKey)}
	for _, tt := range []struct {
		name, doc, prefix string
		path              []string
	}{
		{"snapshot", conn, "", nil},
		{"journal event", event, "/connection", []string{"connection"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := f.Encrypt([]byte(tt.doc), tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			for secret, p := range secrets {
				v := valueAt(t, enc, append(append([]string{}, tt.path...), p...)...)
				if secret == "pw1" {
					v = v[strings.Index(v, Prefix):strings.IndexByte(v, '@')]
				}
				if !strings.HasPrefix(v, Prefix) || stdlibDecrypt(t, testKey, v) != secret {
					t.Errorf("%v not encrypted: %q", p, v)
				}
			}
			if v := valueAt(t, enc, append(append([]string{}, tt.path...), "sshTunnel", "uri")...); v != "ssh://t:1" {
				t.Errorf("sshTunnel/uri is not a default pointer, got %q", v)
			}
			// The wrong prefix finds nothing.
			other := "/connection"
			if tt.prefix != "" {
				other = ""
			}
			if same, _ := f.Encrypt([]byte(tt.doc), other); !bytes.Equal(same, []byte(tt.doc)) {
				t.Error("pointers applied with the wrong prefix")
			}
			dec, err := f.Decrypt(enc, tt.prefix)
			if err != nil || string(dec) != tt.doc {
				t.Fatalf("%v\n%s", err, dec)
			}
		})
	}
	t.Run("event without connection", func(t *testing.T) {
		out, err := f.Encrypt([]byte(opened), "/connection")
		if err != nil || string(out) != opened {
			t.Fatalf("%v %s", err, out)
		}
	})
}

func TestMigrationTransforms(t *testing.T) {
	oldK, newK := otherKey(t), mustCipher(t, testKey)
	plain := []byte(`{"id":"c","uri":"tcp://user:pw@h:1883","n":1.0,"credentials":{"type":"plain","password":"secret"}}`)
	noFields := []byte(`{"id":"c","n":1}`)
	keepOnly := []byte(`{"uri":"tcp://h:1883"}`)
	withOld, _ := (&Fields{Current: oldK}).Encrypt(plain, "")
	withNew, _ := (&Fields{Current: newK}).Encrypt(plain, "")
	// One field under each key: neither key reads the whole document.
	mixed := bytes.Replace(withOld, []byte(valueAt(t, withOld, "credentials", "password")),
		[]byte(valueAt(t, withNew, "credentials", "password")), 1)
	// Encrypted URI password only: initial encryption must skip it.
	partly := []byte(`{"uri":"` + valueAt(t, withNew, "uri") + `","credentials":{"password":"secret"}}`)

	decryptsTo := func(t *testing.T, c *Cipher, doc, want []byte) {
		t.Helper()
		got, err := (&Fields{Current: c}).Decrypt(doc, "")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("decrypt: %v\n%s", err, got)
		}
	}
	type result int
	const (
		processed result = iota
		skipped
		failed
	)
	check := func(t *testing.T, tr Transform, in []byte, want result) []byte {
		t.Helper()
		out, changed, err := tr(in, "")
		switch want {
		case processed:
			if err != nil || !changed || bytes.Equal(out, in) {
				t.Fatalf("want processed: changed=%v err=%v", changed, err)
			}
		case skipped:
			if err != nil || changed || !bytes.Equal(out, in) {
				t.Fatalf("want skipped: changed=%v err=%v", changed, err)
			}
		case failed:
			if err == nil {
				t.Fatal("want failed")
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), Prefix) {
				t.Fatalf("error reveals a value: %v", err)
			}
		}
		return out
	}

	t.Run("initial encryption", func(t *testing.T) {
		f := &Fields{Current: newK}
		mode, tr, err := f.Migration()
		if err != nil || mode != ModeInitialEncryption {
			t.Fatal(mode, err)
		}
		out := check(t, tr, plain, processed)
		decryptsTo(t, newK, out, plain)
		check(t, tr, out, skipped)
		check(t, tr, partly, skipped)
		check(t, tr, noFields, skipped)
		check(t, tr, keepOnly, skipped)
		check(t, tr, withOld, skipped) // encrypted already, whatever the key
	})
	t.Run("key rotation", func(t *testing.T) {
		f := &Fields{Current: newK, Old: oldK}
		mode, tr, err := f.Migration()
		if err != nil || mode != ModeKeyRotation {
			t.Fatal(mode, err)
		}
		out := check(t, tr, withOld, processed)
		decryptsTo(t, newK, out, plain)
		check(t, tr, out, skipped)     // already migrated
		check(t, tr, withNew, skipped) // already migrated
		out = check(t, tr, plain, processed)
		decryptsTo(t, newK, out, plain) // plaintext gets encrypted too
		check(t, tr, noFields, skipped)
		check(t, tr, mixed, failed)
		third := &Fields{Current: newK, Old: mustCipher(t, base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))}
		check(t, third.RotateKey, withOld, failed)
		var fe *FieldError
		if _, _, err := third.RotateKey(withOld, ""); !errors.As(err, &fe) || fe.Pointer != "/uri" {
			t.Fatalf("error does not name the pointer: %v", err)
		}
	})
	t.Run("disable", func(t *testing.T) {
		f := &Fields{Old: oldK}
		mode, tr, err := f.Migration()
		if err != nil || mode != ModeDisable {
			t.Fatal(mode, err)
		}
		out := check(t, tr, withOld, processed)
		if !bytes.Equal(out, plain) {
			t.Fatalf("%s", out)
		}
		check(t, tr, plain, skipped)
		check(t, tr, withNew, skipped) // the old key fails: taken as plaintext
		check(t, tr, mixed, skipped)
		check(t, tr, []byte(`not json`), failed)
	})
	t.Run("no keys", func(t *testing.T) {
		if _, _, err := (&Fields{}).Migration(); !errors.Is(err, ErrNoKey) {
			t.Fatal(err)
		}
	})
	t.Run("journal prefix", func(t *testing.T) {
		ev := []byte(`{"type":"connectivity.events:connectionCreated","connection":` + string(withOld) + `,"__hh":{}}`)
		out, changed, err := (&Fields{Current: newK, Old: oldK}).RotateKey(ev, "connection")
		if err != nil || !changed {
			t.Fatal(err)
		}
		got, err := (&Fields{Current: newK}).Decrypt(out, "/connection")
		if err != nil || !bytes.Contains(got, plain) {
			t.Fatalf("%v %s", err, got)
		}
	})
}

func TestValueHelpers(t *testing.T) {
	c := mustCipher(t, testKey)
	for _, v := range []string{"tcp://user:pw@h:1", "secret", "abc:def", "tcp://h:1"} {
		e, err := c.EncryptValue(v)
		if err != nil {
			t.Fatal(err)
		}
		changed := e != v
		if changed != IsEncryptedValue(e) {
			t.Fatalf("%q: IsEncryptedValue(%q) = %v", v, e, !changed)
		}
		d, err := c.DecryptValue(e)
		if err != nil || d != v {
			t.Fatalf("%q: %q %v", v, d, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	f := &Fields{Current: mustCipher(t, testKey), Old: otherKey(t)}
	doc := []byte(`{"uri":"tcp://u:p@h:1","credentials":{"password":"x"}}`)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				enc, err := f.Encrypt(doc, "")
				if err != nil {
					t.Error(err)
					return
				}
				if dec, err := f.Decrypt(enc, ""); err != nil || !bytes.Equal(dec, doc) {
					t.Error("round trip failed", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// prefixAEAD seals to a body containing "encrypted_" for an all-zero IV,
// which real AES-GCM would do only by astronomically rare chance.
type prefixAEAD struct{ cipher.AEAD }

func (a prefixAEAD) Seal(dst, nonce, pt, ad []byte) []byte {
	if bytes.Equal(nonce, make([]byte, ivSize)) {
		raw, _ := base64.URLEncoding.DecodeString("AAAAAAAAAAAAAAAAencrypted_AAAAAAAAAAAAAAAAAAAAAA")
		return append(dst, raw[ivSize:]...)
	}
	return a.AEAD.Seal(dst, nonce, pt, ad)
}

func TestBodyNeverContainsPrefix(t *testing.T) {
	// Ditto strips every "encrypted_" before decoding, so such a body would
	// be unreadable; EncryptString must draw a new IV instead.
	c := mustCipher(t, testKey)
	ivs := append(make([]byte, ivSize), bytes.Repeat([]byte{1}, ivSize)...)
	fake := &Cipher{aead: prefixAEAD{c.aead}, iv: bytes.NewReader(ivs)}
	s, err := fake.EncryptString("x")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(s, Prefix) != 1 || !strings.HasPrefix(s, Prefix+"AQEB") {
		t.Fatalf("%q", s)
	}
	if pt, err := c.DecryptString(s); err != nil || pt != "x" {
		t.Fatalf("%q %v", pt, err)
	}
	// And a value with the prefix inside is rejected, as Ditto rejects it.
	if _, err := c.DecryptString(Prefix + "AAAAAAAAAAAAAAAAencrypted_AAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, ErrDecrypt) {
		t.Fatal(err)
	}
}
