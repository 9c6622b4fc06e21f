package fieldcrypto

import (
	"bufio"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// testdata/javauri.tsv was produced by running java.net.URI (JDK 17 and
// JDK 25 gave identical output) over hand-picked and generated inputs; each
// line is: hex(input) TAB whole|keep|pw [TAB hex(raw user-info) TAB
// hex(Ditto's string rebuild with password "NEW")]. "-" is the empty string.
// JAVAURI_GOLDEN=<file> checks a larger table of the same format.
func TestClassifyMatchesJava(t *testing.T) {
	path := "testdata/javauri.tsv"
	if p := os.Getenv("JAVAURI_GOLDEN"); p != "" {
		path = p
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unhex := func(s string) string {
		if s == "-" {
			return ""
		}
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("bad golden line: %v", err)
		}
		return string(b)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	lines, bad := 0, 0
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		in := unhex(cols[0])
		lines++
		kind, ui, _ := classify(in)
		want := cols[1]
		got := map[valueKind]string{kindWhole: "whole", kindKeep: "keep", kindPassword: "pw"}[kind]
		switch {
		case got != want:
			t.Errorf("%q: got %s, Java says %s", in, got, want)
			bad++
		case want == "pw" && ui != unhex(cols[2]):
			t.Errorf("%q: user-info %q, Java says %q", in, ui, unhex(cols[2]))
			bad++
		case want == "pw" && replacePassword(in, ui, "NEW") != unhex(cols[3]):
			t.Errorf("%q: rebuilt %q, Ditto's rule gives %q", in, replacePassword(in, ui, "NEW"), unhex(cols[3]))
			bad++
		}
		if bad > 20 {
			t.Fatal("too many mismatches")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines < 100 {
		t.Fatalf("golden table has only %d lines", lines)
	}
}

// The decisions the brief singles out, stated directly (the golden table
// covers them too, but this reads as documentation).
func TestClassifyCases(t *testing.T) {
	const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		name, in string
		kind     valueKind
		password string
	}{
		{"mqtt uri", "tcp://user:pw@host:1883", kindPassword, "pw"},
		{"amqps with vhost", "amqps://user:pw@host:5671/vhost", kindPassword, "pw"},
		{"ssh", "ssh://user:pw@host:22", kindPassword, "pw"},
		{"no user-info", "tcp://host:1883", kindKeep, ""},
		{"user without password", "tcp://user@host:1883", kindKeep, ""},
		{"empty user", "tcp://:pw@host:1883", kindPassword, "pw"},
		{"empty password", "tcp://user:@host:1883", kindPassword, ""},
		{"scheme-like secret stays plaintext", "abc:def", kindKeep, ""},
		{"opaque uri", "mailto:x", kindKeep, ""},
		{"opaque with user-info look-alike", "mailto:user:pw@host", kindKeep, ""},
		{"plain secret", "secret123", kindWhole, ""},
		{"empty string", "", kindWhole, ""},
		{"pem with newlines", pem, kindWhole, ""},
		{"spaces", "my secret value", kindWhole, ""},
		{"space in uri path", "tcp://user:pw@host:1883/a b", kindWhole, ""},
		{"ipv6 host", "tcp://u:p@[::1]:1883", kindPassword, "p"},
		{"ipv6 with scope id", "tcp://u:p@[fe80::1%25eth0]:1883", kindPassword, "p"},
		{"broken ipv6", "tcp://u:p@[::1:1883", kindWhole, ""},
		{"escaped @ in password", "tcp://user:p%40ss@host:1883", kindPassword, "p%40ss"},
		{"raw @ in password: registry authority", "tcp://user:p@ss@host:1883", kindKeep, ""},
		{"malformed escape", "tcp://user:p%zz@host:1883", kindWhole, ""},
		{"underscore host: registry authority", "tcp://user:pw@my_broker:1883", kindKeep, ""},
		{"port beyond int", "tcp://user:pw@host:99999999999", kindKeep, ""},
		{"no scheme", "//user:pw@host", kindWhole, ""},
		{"scheme must start with a letter", "1abc:def", kindWhole, ""},
		{"empty opaque part", "abc:", kindWhole, ""},
		{"empty authority", "http://", kindWhole, ""},
		{"non-ascii user", "tcp://\u00fcser:pw@host:1883", kindPassword, "pw"},
		{"no-break space", "tcp://user:p\u00a0w@host:1883", kindWhole, ""},
		{"already encrypted value", "encrypted_AAECAwQFBgcICQoL", kindWhole, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, ui, _ := classify(tt.in)
			if kind != tt.kind {
				t.Fatalf("kind %d, want %d", kind, tt.kind)
			}
			if kind == kindPassword && uriPassword(ui) != tt.password {
				t.Fatalf("password %q, want %q", uriPassword(ui), tt.password)
			}
		})
	}
}

func TestReplacePasswordQuirk(t *testing.T) {
	// Ditto looks the user-info text up with indexOf, which for "p:" finds
	// the "p:" at the end of the scheme: part of the value is lost. We
	// write what Ditto writes.
	in := "tcp://p:@host:1883"
	kind, ui, _ := classify(in)
	if kind != kindPassword {
		t.Fatalf("kind %d", kind)
	}
	if got := replacePassword(in, ui, "X"); got != "tcp:X@host:1883" {
		t.Fatalf("got %q", got)
	}
	if got := replacePassword("tcp://user:pw@host:1883", "user:pw", "X"); got != "tcp://user:X@host:1883" {
		t.Fatalf("got %q", got)
	}
}
