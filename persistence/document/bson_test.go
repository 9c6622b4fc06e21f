package document

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
)

// Two keys of the tests (base64 of 32 bytes).
const (
	keyA = "vJFSTPE9PO2BtZlcMAwNjs8jdFvQCk0Ya9MVdYjRJUU="
	keyB = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// journalPrefix is where journal events carry the connection.
const journalPrefix = "connection"

// pointers of the equivalence tests: Ditto's defaults plus one with an
// escaped key and two naming the same location.
var bsonTestPointers = append(append([]string(nil), fieldcrypto.DefaultPointers...),
	"/specificConfig/jms.password", "/specificConfig/$x", "credentials/password/")

func mustFields(t testing.TB, key string, ptrs []string) *fieldcrypto.Fields {
	t.Helper()
	k, err := fieldcrypto.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := fieldcrypto.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	return &fieldcrypto.Fields{Current: c, Pointers: ptrs}
}

func encryptJSON(t testing.TB, key string, ptrs []string, js string) string {
	t.Helper()
	out, err := mustFields(t, key, ptrs).Encrypt([]byte(js), "")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func fromJSON(t testing.TB, js string) []byte {
	t.Helper()
	d, err := FromJSON([]byte(js))
	if err != nil {
		t.Fatalf("%v: %s", err, js)
	}
	return d
}

// snapDoc and journalDoc wrap payloads as the stores keep them.
func snapDoc(s2 []byte) []byte {
	start, dst := bsoncore.AppendDocumentStart(nil)
	dst = bsoncore.AppendObjectIDElement(dst, "_id", bson.NewObjectID())
	dst = bsoncore.AppendStringElement(dst, "pid", "connection:c")
	dst = bsoncore.AppendInt64Element(dst, "sn", 7)
	if s2 != nil {
		dst = bsoncore.AppendDocumentElement(dst, "s2", s2)
	}
	dst = bsoncore.AppendDoubleElement(dst, "after", 1.0)
	dst, _ = bsoncore.AppendDocumentEnd(dst, start)
	return dst
}

func journalDoc(events ...[]byte) []byte {
	start, dst := bsoncore.AppendDocumentStart(nil)
	dst = bsoncore.AppendObjectIDElement(dst, "_id", bson.NewObjectID())
	dst = bsoncore.AppendStringElement(dst, "pid", "connection:c")
	as, dst := bsoncore.AppendArrayElementStart(dst, "events")
	for i, ev := range events {
		key := string(rune('0' + i))
		if ev == nil {
			dst = bsoncore.AppendInt32Element(dst, key, 5) // not a document
			continue
		}
		dst = bsoncore.AppendDocumentElement(dst, key, ev)
	}
	dst, _ = bsoncore.AppendArrayEnd(dst, as)
	ts, dst := bsoncore.AppendArrayElementStart(dst, "_tg")
	dst = bsoncore.AppendStringElement(dst, "0", "tag")
	dst, _ = bsoncore.AppendArrayEnd(dst, ts)
	dst, _ = bsoncore.AppendDocumentEnd(dst, start)
	return dst
}

// event is a journal event element with a payload of type typ carrying
// conn (none when empty).
func event(t testing.TB, typ, conn string) []byte {
	js := `{"type":"` + typ + `"`
	if conn != "" {
		js += `,"connection":` + conn
	}
	return fromJSON(t, `{"sn":1,"p":`+js+`,"n":1.5},"m":"x"}`)
}

var encryptedValue = regexp.MustCompile(`encrypted_[A-Za-z0-9_=-]+`)

// TestBSONRewriteMatchesJSON runs every mode over payloads in every state
// (plain, under either key, mixed, damaged) and in odd shapes, once in BSON
// directly and once through JSON, and requires the same outcome: changed,
// the same error text, and the same document (compared as JSON, with the
// random ciphertexts compared by what they decrypt to).
func TestBSONRewriteMatchesJSON(t *testing.T) {
	plains := []string{
		`{"id":"c","uri":"tcp://user:pw@h:1883","n":1.5,"i":3,"b":true,"z":null,"credentials":{"type":"plain","password":"secret"},` +
			`"specificConfig":{"jms.password":"jp","$x":"dollar","other":"o"},"sshTunnel":{"credentials":{"password":"p","privateKey":"k"}},"sources":[{"a":"b"}]}`,
		`{"uri":"tcp://a:first@h","uri":"amqp://c:second@h","credentials":{"password":"x"},"credentials":{"password":"last"}}`,
		`{"uri":5,"credentials":["x"],"sshTunnel":{"credentials":"str"}}`,
		`{"uri":"tcp://h:1883","credentials":{"password":""}}`,
		`{"id":"nothing"}`,
		`{"credentials":{"password":"ü\"\\\u0001<>&\u2028"},"uri":"amqps://user:p%40ss@host:5671/vhost?x=1&y=<2>"}`,
		`{"uri":"not a uri","credentials":{"clientSecret":"cs","parameters":{"accessKey":"ak","secretKey":"sk","sharedKey":"shk"},"key":"-----BEGIN"}}`,
		`{"uri":"ws://u:@h","credentials":{"password":"encrypted_AAAA"}}`,
	}
	var payloads []string
	for _, p := range plains {
		a := encryptJSON(t, keyA, bsonTestPointers, p)
		b := encryptJSON(t, keyB, bsonTestPointers, p)
		mixed := encryptJSON(t, keyB, []string{"/credentials/password"}, encryptJSON(t, keyA, []string{"/uri"}, p))
		payloads = append(payloads, p, a, b, mixed)
	}
	var snaps, journals [][]byte
	for _, p := range payloads {
		snaps = append(snaps, snapDoc(fromJSON(t, p)))
		journals = append(journals, journalDoc(
			event(t, "connectivity.events:connectionCreated", p),
			event(t, "connectivity.events:connectionOpened", ""),
			nil,
			fromJSON(t, `{"type":"x"}`),
			fromJSON(t, `{"p":"not a document"}`),
			event(t, "connectivity.events:connectionModified", p),
		))
	}
	// odd shapes
	snaps = append(snaps, snapDoc(nil), fromJSON(t, `{"s2":"legacy"}`), fromJSON(t, `{"s2":{"uri":"tcp://u:p@h"},"s2":{"uri":"tcp://u:q@h"}}`))
	journals = append(journals, fromJSON(t, `{"pid":"x"}`), fromJSON(t, `{"events":[]}`), fromJSON(t, `{"events":{"0":1}}`),
		fromJSON(t, `{"events":[{"p":{"connection":{"uri":"tcp://u:p@h"}},"p":{"connection":{"uri":"tcp://u:q@h"}}}]}`),
		journalDoc(event(t, "a", plains[0]), event(t, "b", `{"credentials":{"password":"encrypted_AAAA"}}`)))
	// malformed inside s2 or events (bsoncore's Validate checks one level
	// only): the JSON way decides
	for _, c := range []struct {
		list *[][]byte
		doc  []byte
	}{{&snaps, snapDoc(fromJSON(t, plains[0]))}, {&journals, journalDoc(event(t, "c", plains[0]))}} {
		at := bytes.Index(c.doc, []byte("credentials\x00")) + len("credentials\x00")
		for _, n := range []uint32{3, 1 << 20, 6} {
			bad := append([]byte(nil), c.doc...)
			binary.LittleEndian.PutUint32(bad[at:], n)
			*c.list = append(*c.list, bad)
		}
	}
	// invalid UTF-8 in a value: the JSON way decides
	bad := snapDoc(fromJSON(t, `{"credentials":{"password":"abc"}}`))
	bad[bytes.Index(bad, []byte("abc"))+1] = 0xff
	snaps = append(snaps, bad, []byte{1, 2, 3})

	for _, m := range bsonTestModes {
		t.Run(m.name, func(t *testing.T) {
			p, reader := m.plans(t)
			counts := map[string]int{}
			for _, snap := range []bool{true, false} {
				docs := journals
				if snap {
					docs = snaps
				}
				for i, doc := range docs {
					outcome, msg := sameOutcome(t, p, reader, snap, doc)
					if msg != "" {
						t.Fatalf("snap=%v doc %d: %s", snap, i, msg)
					}
					counts[outcome]++
				}
			}
			t.Log(counts)
			if counts["processed"] == 0 || counts["skipped"] == 0 {
				t.Fatal("the cases do not cover both outcomes", counts)
			}
		})
	}
}

type bsonTestMode struct {
	name             string
	key, old, readAs string
	either           bool // decrypt with whichever key reads a value
}

var bsonTestModes = []bsonTestMode{
	{name: "initial", key: keyA, readAs: keyA},
	{name: "rotation", key: keyB, old: keyA, readAs: keyB},
	{name: "disable", old: keyA},
	{name: "decrypt with either key", key: keyB, old: keyA, either: true},
}

// plan is one way of rewriting: the transform (the JSON way) and its
// values function (the BSON way, when bson is not nil).
type plan struct {
	transform fieldcrypto.Transform
	bson      *BSONRewriter
}

func cipherOf(t testing.TB, key string) *fieldcrypto.Cipher {
	if key == "" {
		return nil
	}
	return mustFields(t, key, nil).Current
}

func newPlan(t testing.TB, f *fieldcrypto.Fields, either bool) *plan {
	t.Helper()
	_, transform, err := f.Migration()
	if err != nil {
		t.Fatal(err)
	}
	_, values, err := f.MigrationValues()
	if err != nil {
		t.Fatal(err)
	}
	if either {
		transform = func(doc []byte, prefix string) ([]byte, bool, error) {
			out, err := f.Decrypt(doc, prefix)
			if errors.Is(err, fieldcrypto.ErrDecrypt) {
				return doc, false, nil
			}
			return out, err == nil && !bytes.Equal(out, doc), err
		}
		values = func(vals []fieldcrypto.Value) (bool, error) {
			changed, err := f.DecryptValues(vals)
			if errors.Is(err, fieldcrypto.ErrDecrypt) {
				return false, nil
			}
			return changed, err
		}
	}
	rw, err := NewBSONRewriter(f, journalPrefix, values)
	if err != nil {
		t.Fatal(err)
	}
	return &plan{transform: transform, bson: rw}
}

// plans returns the mode's plan and, when it encrypts, a plan that
// decrypts with its key (to compare what random ciphertexts stand for).
func (m bsonTestMode) plans(t testing.TB) (p, reader *plan) {
	p = newPlan(t, &fieldcrypto.Fields{Current: cipherOf(t, m.key), Old: cipherOf(t, m.old), Pointers: bsonTestPointers}, m.either)
	if p.bson == nil {
		t.Fatal("no BSON rewriter for the test pointers")
	}
	if m.readAs != "" {
		reader = newPlan(t, &fieldcrypto.Fields{Old: cipherOf(t, m.readAs), Pointers: bsonTestPointers}, false)
	}
	return p, reader
}

// rewrite is the migration's way: in BSON where the rewriter can, else
// through JSON.
func (p *plan) rewrite(snap bool, doc []byte) ([]byte, bool, error) {
	if p.bson != nil {
		var out []byte
		var changed bool
		var err error
		if snap {
			out, changed, err = p.bson.Snapshot(doc)
		} else {
			out, changed, err = p.bson.Journal(doc)
		}
		if !errors.Is(err, ErrNeedsJSON) {
			if errors.Is(err, ErrNothingToRewrite) {
				return nil, false, nil
			}
			return out, changed, err
		}
	}
	return p.rewriteJSON(snap, doc)
}

// rewriteJSON converts the payload to JSON, transforms it and converts it
// back.
func (p *plan) rewriteJSON(snap bool, doc []byte) ([]byte, bool, error) {
	rewrite, prefix := RewriteJournal, journalPrefix
	if snap {
		rewrite, prefix = RewriteSnapshot, ""
	}
	out, changed, err := rewrite(doc, func(js json.RawMessage) (json.RawMessage, bool, error) {
		return p.transform(js, prefix)
	})
	if errors.Is(err, ErrNothingToRewrite) {
		return nil, false, nil
	}
	return out, changed, err
}

// sameOutcome rewrites doc in BSON directly and through JSON and returns
// the outcome (processed, skipped, failed) and, if the two differ, how.
func sameOutcome(t testing.TB, p, reader *plan, snap bool, doc []byte) (outcome, diff string) {
	in := append([]byte(nil), doc...)
	bOut, bChanged, bErr := p.rewrite(snap, doc)
	jOut, jChanged, jErr := p.rewriteJSON(snap, doc)
	if !bytes.Equal(in, doc) {
		return "", "input modified"
	}
	if (bErr == nil) != (jErr == nil) || bErr != nil && bErr.Error() != jErr.Error() || bChanged != jChanged {
		return "", fmt.Sprintf("bson (%v, %v), json (%v, %v)", bChanged, bErr, jChanged, jErr)
	}
	switch {
	case bErr != nil:
		return "failed", ""
	case !bChanged:
		if bOut != nil && !bytes.Equal(bOut, doc) || !bytes.Equal(bOut, jOut) {
			return "", "unchanged but different output"
		}
		return "skipped", ""
	}
	if err := bsoncore.Document(bOut).Validate(); err != nil {
		return "", fmt.Sprintf("invalid BSON: %v", err)
	}
	bj, jj := renderJSON(t, bOut), renderJSON(t, jOut)
	if a, b := encryptedValue.ReplaceAllString(bj, "E"), encryptedValue.ReplaceAllString(jj, "E"); a != b {
		return "", fmt.Sprintf("\nbson %s\njson %s", a, b)
	}
	if reader != nil {
		bd, _, err1 := reader.rewriteJSON(snap, bOut)
		jd, _, err2 := reader.rewriteJSON(snap, jOut)
		if err1 != nil || err2 != nil {
			return "", fmt.Sprintf("reading back: %v %v", err1, err2)
		}
		// Values Ditto's text surgery mangled (see replacePassword) stay
		// encrypted, with random ciphertexts.
		if a, b := encryptedValue.ReplaceAllString(renderJSON(t, bd), "E"), encryptedValue.ReplaceAllString(renderJSON(t, jd), "E"); a != b {
			return "", fmt.Sprintf("decrypted\nbson %s\njson %s", a, b)
		}
	}
	return "processed", ""
}

// FuzzBSONRewrite: for any payload (as JSON, stored as Ditto stores it, in
// a snapshot and in a journal event) the BSON rewrite decides exactly as
// the JSON way, in every mode; any bytes taken as a whole document are
// handled without a panic.
func FuzzBSONRewrite(f *testing.F) {
	t := testing.TB(f)
	for _, p := range []string{
		`{"uri":"tcp://user:pw@h:1883","credentials":{"type":"plain","password":"secret"},"specificConfig":{"jms.password":"x"}}`,
		`{"uri":"tcp://a:b@h","uri":"amqp://c:d@h","credentials":{"password":""},"n":1.5}`,
		`{"credentials":{"password":"encrypted_AAAA"},"sshTunnel":{"credentials":{"privateKey":"k"}}}`,
	} {
		f.Add(p, uint8(0), false)
		f.Add(encryptJSON(t, keyA, bsonTestPointers, p), uint8(1), false)
		f.Add(encryptJSON(t, keyB, bsonTestPointers, p), uint8(3), false)
	}
	f.Add(string(journalDoc(event(t, "c", `{"uri":"tcp://u:p@h"}`))), uint8(0), true)
	f.Fuzz(func(t *testing.T, payload string, mode uint8, raw bool) {
		m := bsonTestModes[int(mode)%len(bsonTestModes)]
		p, reader := m.plans(t)
		var snaps, journals [][]byte
		if raw {
			// Any bytes: no panic, and what comes out is as well-formed as
			// what went in. (The
			// two ways may differ here: the JSON way converts or rejects
			// types JSON lacks, the BSON way keeps them.)
			for _, snap := range []bool{true, false} {
				out, changed, err := p.rewrite(snap, []byte(payload))
				in := []byte(payload)
				if err == nil && changed && (wellFormed(in, 0, len(in)) && !wellFormed(out, 0, len(out)) || bsoncore.Document(out).Validate() != nil) {
					t.Fatalf("%s snap=%v: malformed output %x", m.name, snap, out)
				}
			}
			return
		} else {
			d, err := FromJSON([]byte(payload))
			if err != nil {
				return
			}
			start, ev := bsoncore.AppendDocumentStart(nil)
			ev = bsoncore.AppendDocumentElement(ev, "p", func() []byte {
				ps, pd := bsoncore.AppendDocumentStart(nil)
				pd = bsoncore.AppendStringElement(pd, "type", "c")
				pd = bsoncore.AppendDocumentElement(pd, "connection", d)
				pd, _ = bsoncore.AppendDocumentEnd(pd, ps)
				return pd
			}())
			ev, _ = bsoncore.AppendDocumentEnd(ev, start)
			snaps, journals = [][]byte{snapDoc(d)}, [][]byte{journalDoc(ev, ev)}
		}
		for _, doc := range snaps {
			if _, diff := sameOutcome(t, p, reader, true, doc); diff != "" {
				t.Fatalf("%s snapshot: %s", m.name, diff)
			}
		}
		for _, doc := range journals {
			if _, diff := sameOutcome(t, p, reader, false, doc); diff != "" {
				t.Fatalf("%s journal: %s", m.name, diff)
			}
		}
	})
}

func renderJSON(t testing.TB, doc []byte) string {
	t.Helper()
	js, err := ToJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

// TestBSONRewriteKeepsEverythingElse: encrypting and then decrypting in
// BSON gives back the very bytes, including types JSON has no form for
// (which the JSON way cannot rewrite at all).
func TestBSONRewriteKeepsEverythingElse(t *testing.T) {
	start, s2 := bsoncore.AppendDocumentStart(nil)
	s2 = bsoncore.AppendDoubleElement(s2, "one", 1.0)
	s2 = bsoncore.AppendDoubleElement(s2, "nan", math.NaN())
	s2 = bsoncore.AppendInt64Element(s2, "small", 2)
	s2 = bsoncore.AppendDateTimeElement(s2, "when", 1700000000000)
	s2 = bsoncore.AppendStringElement(s2, "uri", "tcp://user:pw@h:1883")
	cs, s2 := bsoncore.AppendDocumentElementStart(s2, "credentials")
	s2 = bsoncore.AppendStringElement(s2, "type", "plain")
	s2 = bsoncore.AppendStringElement(s2, "password", "secret")
	s2, _ = bsoncore.AppendDocumentEnd(s2, cs)
	s2 = bsoncore.AppendBinaryElement(s2, "bin", 0, []byte{0, 1, 2})
	s2, _ = bsoncore.AppendDocumentEnd(s2, start)
	orig := snapDoc(s2)
	// a journal document whose second event carries s2's content as its connection
	st, ev := bsoncore.AppendDocumentStart(nil)
	ps, ev := bsoncore.AppendDocumentElementStart(ev, "p")
	ev = bsoncore.AppendStringElement(ev, "type", "c")
	ev = bsoncore.AppendDocumentElement(ev, "connection", s2)
	ev, _ = bsoncore.AppendDocumentEnd(ev, ps)
	ev, _ = bsoncore.AppendDocumentEnd(ev, st)
	jorig := journalDoc(fromJSON(t, `{"p":{"type":"t"}}`), ev, nil)

	enc := newPlan(t, &fieldcrypto.Fields{Current: cipherOf(t, keyA)}, false)
	dec := newPlan(t, &fieldcrypto.Fields{Old: cipherOf(t, keyA)}, false)
	for _, c := range []struct {
		snap bool
		doc  []byte
	}{{true, orig}, {false, jorig}} {
		if _, _, err := enc.rewriteJSON(c.snap, c.doc); err == nil {
			t.Fatal("the JSON way rewrote a NaN")
		}
		mid, changed, err := enc.rewrite(c.snap, c.doc)
		if err != nil || !changed || bytes.Count(mid, []byte(fieldcrypto.Prefix)) != 2 {
			t.Fatalf("encrypt: %v %v", changed, err)
		}
		back, changed, err := dec.rewrite(c.snap, mid)
		if err != nil || !changed || !bytes.Equal(back, c.doc) {
			t.Fatalf("decrypt: %v %v\n%x\n%x", changed, err, back, c.doc)
		}
	}
}

func TestBSONRewriteSlowPath(t *testing.T) {
	p := newPlan(t, &fieldcrypto.Fields{Current: cipherOf(t, keyA)}, false)
	bad := snapDoc(fromJSON(t, `{"credentials":{"password":"abc"}}`))
	bad[bytes.Index(bad, []byte("abc"))+1] = 0xff
	if _, _, err := p.bson.Snapshot(bad); !errors.Is(err, ErrNeedsJSON) {
		t.Fatalf("invalid UTF-8 in a value: %v", err)
	}
	if out, changed, err := p.rewrite(true, bad); err != nil || !changed || !bytes.Contains(out, []byte(fieldcrypto.Prefix)) {
		t.Fatalf("the JSON way did not take over: %v %v", changed, err)
	}
	f := &fieldcrypto.Fields{Current: cipherOf(t, keyA), Pointers: []string{"/a\uFFFDb"}}
	if rw, err := NewBSONRewriter(f, journalPrefix, f.InitialEncryptionValues); err != nil || rw != nil {
		t.Fatalf("a pointer with U+FFFD must use the JSON way: %v", err)
	}
}

// BenchmarkRewrite is the CPU of rewriting one document for a key rotation
// (the benchmark's documents), in BSON directly and through JSON.
func BenchmarkRewrite(b *testing.B) {
	t := testing.TB(b)
	conn := `{"__lifecycle":"ACTIVE","id":"c001","uri":"tcp://user:pw-c001@h:1883","credentials":{"type":"plain","password":"secret-c001"}}`
	conn = encryptJSON(t, keyA, nil, conn)
	snap := snapDoc(fromJSON(t, conn))
	journal := journalDoc(event(t, "connectivity.events:connectionCreated", conn))
	p := newPlan(t, &fieldcrypto.Fields{Current: cipherOf(t, keyB), Old: cipherOf(t, keyA)}, false)
	for _, c := range []struct {
		name string
		fn   func(bool, []byte) ([]byte, bool, error)
	}{{"bson", p.rewrite}, {"json", p.rewriteJSON}} {
		for _, d := range []struct {
			name string
			snap bool
			doc  []byte
		}{{"snapshot", true, snap}, {"journal", false, journal}} {
			b.Run(c.name+"/"+d.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, changed, err := c.fn(d.snap, d.doc); err != nil || !changed {
						b.Fatal(changed, err)
					}
				}
			})
		}
	}
}
