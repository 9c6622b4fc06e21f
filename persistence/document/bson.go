package document

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
)

// BSONRewriter rewrites the values at the pointers of snapshot (s2) and
// journal (events[].p) documents directly in their BSON bytes: the strings
// at the pointers are replaced and the lengths of the documents around them
// adjusted; every other byte stays as it is. For payloads of JSON types
// (all Ditto and dittoconn write) it decides exactly as the values'
// transform over RewriteSnapshot/RewriteJournal does (same values, same
// outcomes, same errors), without converting whole documents to JSON and
// back; values of other BSON types, which the JSON way converts or rejects,
// it keeps as they are (Ditto's migration keeps types too). Where the two
// could differ (a value at a pointer that is not valid UTF-8, a duplicated
// s2, events or p key) and for malformed documents it answers ErrNeedsJSON
// and the caller takes the JSON way. It keeps no state between documents:
// one rewriter serves concurrent callers.
type BSONRewriter struct {
	snap, journal         []fieldcrypto.Path // journal: under p, with the journal prefix
	snapTrie, journalTrie *keyTrie
	values                fieldcrypto.ValuesFunc
}

// ErrNeedsJSON: the BSON rewrite cannot decide this document as the JSON
// way would; rewrite it through JSON.
var ErrNeedsJSON = errors.New("document: needs the JSON rewrite")

// NewBSONRewriter returns the rewriter for f's pointers (snapshots at the
// root of s2, journal events under journalPrefix of p) and values, the
// ValuesFunc of the JSON transform it stands in for. A nil rewriter without
// an error means only the JSON way can match these pointers.
func NewBSONRewriter(f *fieldcrypto.Fields, journalPrefix string, values fieldcrypto.ValuesFunc) (*BSONRewriter, error) {
	snap, err := f.Paths("")
	if err != nil {
		return nil, err
	}
	journal, err := f.Paths(journalPrefix)
	if err != nil {
		return nil, err
	}
	for _, p := range append(append([]fieldcrypto.Path(nil), snap...), journal...) {
		for _, k := range p.Keys {
			// The JSON way turns invalid UTF-8 in stored keys into U+FFFD,
			// so only there could such a key match.
			if !utf8.ValidString(k) || strings.ContainsRune(k, utf8.RuneError) {
				return nil, nil
			}
		}
	}
	return &BSONRewriter{snap: snap, journal: journal, snapTrie: newKeyTrie(snap), journalTrie: newKeyTrie(journal), values: values}, nil
}

// element is one element of a BSON document, as absolute offsets into the
// whole document.
type element struct {
	key    []byte
	typ    bsoncore.Type
	vs, ve int // the value
}

// elements calls fn for each element of the document at off (its framing
// checked: by bsoncore's Validate at the top, by wellFormed below).
func elements(b []byte, off int, fn func(el element)) {
	end := off + int(int32(binary.LittleEndian.Uint32(b[off:]))) - 1 // before the trailing 0
	for pos := off + 4; pos < end; {
		e, next, ok := readElement(b, pos, end)
		if !ok {
			return
		}
		fn(e)
		pos = next
	}
}

// wellFormed checks the document or array at b[off:end] and every one
// nested in it: lengths inside their parents, elements that read, trailing
// zeros. bsoncore's Validate checks one level only; the walk above relies
// on all of them, and the JSON way reports any of them as malformed, so a
// document that fails here goes the JSON way.
func wellFormed(b []byte, off, end int) bool {
	if end-off < 5 {
		return false
	}
	n := int(int32(binary.LittleEndian.Uint32(b[off:])))
	if n < 5 || n > end-off || b[off+n-1] != 0 {
		return false
	}
	pos, last := off+4, off+n-1
	for pos < last {
		el, _, ok := bsoncore.ReadElement(b[pos:last])
		if !ok {
			return false
		}
		typ := bsoncore.Type(b[pos])
		key, err := el.KeyBytesErr()
		if err != nil {
			return false
		}
		vs, ve := pos+1+len(key)+1, pos+len(el)
		switch typ {
		case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray:
			if !wellFormed(b, vs, ve) || int(int32(binary.LittleEndian.Uint32(b[vs:]))) != ve-vs {
				return false
			}
		case bsoncore.TypeString:
			if ve-vs < 5 || int(int32(binary.LittleEndian.Uint32(b[vs:]))) != ve-vs-4 || b[ve-1] != 0 {
				return false
			}
		}
		pos = ve
	}
	return pos == last
}

// only finds key at the top of the document at off (the first one, as
// bsoncore's Lookup); dup reports a second one.
func only(b []byte, off int, key string) (el element, found, dup bool) {
	elements(b, off, func(e element) {
		if string(e.key) == key {
			if found {
				dup = true
				return
			}
			el, found = e, true
		}
	})
	return el, found, dup
}

// keyIs compares a stored key with a pointer key after reversing Ditto's
// key escapes, as the JSON conversion does.
func keyIs(raw []byte, key string) bool {
	i := 0
	for j := 0; j < len(raw); {
		var c byte
		switch {
		case raw[j] == 0xEF && len(raw)-j >= 3 && string(raw[j:j+3]) == dotEscape:
			c, j = '.', j+3
		case raw[j] == 0xEF && len(raw)-j >= 3 && string(raw[j:j+3]) == dollarEscape:
			c, j = '$', j+3
		default:
			c, j = raw[j], j+1
		}
		if i >= len(key) || key[i] != c {
			return false
		}
		i++
	}
	return i == len(key)
}

// located is a string value at a pointer: the BSON string value (length,
// bytes, 0).
type located struct{ vs, ve int }

// keyTrie is the paths' keys as a tree, so each document on the way is
// read once for all paths (the default pointers share "credentials" and
// "sshTunnel"). A node's ends are the paths that end at it.
type keyTrie struct {
	key      string
	children []*keyTrie
	ends     []int
}

func newKeyTrie(paths []fieldcrypto.Path) *keyTrie {
	root := &keyTrie{}
	for i, p := range paths {
		n := root
		for _, k := range p.Keys {
			var next *keyTrie
			for _, c := range n.children {
				if c.key == k {
					next = c
					break
				}
			}
			if next == nil {
				next = &keyTrie{key: k}
				n.children = append(n.children, next)
			}
			n = next
		}
		n.ends = append(n.ends, i)
	}
	return root
}

// find records in hits the element each path below n names in the
// document at off: per key the last member with it (as JSON reads
// duplicates), descending into documents only (no array indexes, like
// Ditto's pointers). Every document it descends into goes to containers.
func find(b []byte, off int, n *keyTrie, hits []element, found []bool, containers *[]int) {
	var lastBuf [8]element
	var hasBuf [8]bool
	last, has := lastBuf[:0], hasBuf[:0]
	if len(n.children) > len(lastBuf) {
		last, has = make([]element, 0, len(n.children)), make([]bool, 0, len(n.children))
	}
	last, has = last[:len(n.children)], has[:len(n.children)]
	end := off + int(int32(binary.LittleEndian.Uint32(b[off:]))) - 1
	for pos := off + 4; pos < end; {
		e, next, ok := readElement(b, pos, end)
		if !ok {
			return
		}
		for ci, c := range n.children {
			if keyIs(e.key, c.key) {
				last[ci], has[ci] = e, true
			}
		}
		pos = next
	}
	for ci, c := range n.children {
		if !has[ci] {
			continue
		}
		e := last[ci]
		for _, pi := range c.ends {
			hits[pi], found[pi] = e, true
		}
		if len(c.children) > 0 && e.typ == bsoncore.TypeEmbeddedDocument {
			*containers = append(*containers, e.vs)
			find(b, e.vs, c, hits, found, containers)
		}
	}
}

// readElement reads the element at pos of a document ending at end.
func readElement(b []byte, pos, end int) (element, int, bool) {
	el, _, ok := bsoncore.ReadElement(b[pos:end])
	if !ok {
		return element{}, 0, false
	}
	typ := bsoncore.Type(b[pos])
	k := bytes.IndexByte(b[pos+1:end], 0)
	if k < 0 {
		return element{}, 0, false
	}
	key := b[pos+1 : pos+1+k]
	return element{key: key, typ: typ, vs: pos + 1 + k + 1, ve: pos + len(el)}, pos + len(el), true
}

// payload finds the values at paths (trie: the same paths as a tree) in the
// payload document at off, lets the values function decide, and adds the
// edits and the documents whose length may change (one whose length stays
// is written back as it was). A non-nil error is the document's failure.
func (w *BSONRewriter) payload(b []byte, off int, paths []fieldcrypto.Path, trie *keyTrie, edits *[]ojson.Edit, containers *[]int) (bool, error) {
	var hitBuf [16]element
	var foundBuf [16]bool
	hits, found := hitBuf[:0], foundBuf[:0]
	if len(paths) > len(hitBuf) {
		hits, found = make([]element, 0, len(paths)), make([]bool, 0, len(paths))
	}
	hits, found = hits[:len(paths)], found[:len(paths)]
	find(b, off, trie, hits, found, containers)

	var locBuf [16]located
	locs := locBuf[:0]
	vals := make([]fieldcrypto.Value, 0, len(paths))
	for i, p := range paths { // in pointer order, each location once
		hit := hits[i]
		if !found[i] || hit.typ != bsoncore.TypeString || seen(locs, hit.vs) {
			continue
		}
		n := int(int32(binary.LittleEndian.Uint32(b[hit.vs:])))
		s := string(b[hit.vs+4 : hit.vs+4+n-1])
		if !utf8.ValidString(s) {
			return false, ErrNeedsJSON
		}
		locs = append(locs, located{vs: hit.vs, ve: hit.ve})
		vals = append(vals, fieldcrypto.Value{Pointer: p.Pointer, In: s, Out: s})
	}
	changed, err := w.values(vals)
	if err != nil || !changed {
		return false, err
	}
	for i, v := range vals {
		if v.Out == v.In {
			continue
		}
		repl := make([]byte, 4, 4+len(v.Out)+1)
		binary.LittleEndian.PutUint32(repl, uint32(len(v.Out)+1))
		repl = append(append(repl, v.Out...), 0)
		*edits = append(*edits, ojson.Edit{Start: locs[i].vs, End: locs[i].ve, Repl: repl})
	}
	*containers = append(*containers, off)
	return true, nil
}

func seen(locs []located, vs int) bool {
	for _, l := range locs {
		if l.vs == vs {
			return true
		}
	}
	return false
}

// Snapshot is RewriteSnapshot with the values' transform.
func (w *BSONRewriter) Snapshot(doc []byte) ([]byte, bool, error) {
	if err := bsoncore.Document(doc).Validate(); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	s2, found, dup := only(doc, 0, FieldSnapshot)
	switch {
	case !found:
		return nil, false, ErrNothingToRewrite
	case dup:
		return nil, false, ErrNeedsJSON
	case s2.typ != bsoncore.TypeEmbeddedDocument:
		return nil, false, fmt.Errorf("%w: s2 is %s, not a document", ErrMalformed, s2.typ)
	case !wellFormed(doc, s2.vs, s2.ve):
		return nil, false, ErrNeedsJSON
	}
	var edits []ojson.Edit
	containers := make([]int, 1, 16)
	changed, err := w.payload(doc, s2.vs, w.snap, w.snapTrie, &edits, &containers)
	if err != nil || !changed {
		return doc, false, err
	}
	return splice(doc, edits, containers), true, nil
}

// Journal is RewriteJournal with the values' transform.
func (w *BSONRewriter) Journal(doc []byte) ([]byte, bool, error) {
	if err := bsoncore.Document(doc).Validate(); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	events, found, dup := only(doc, 0, FieldEvents)
	switch {
	case !found:
		return nil, false, ErrNothingToRewrite
	case dup:
		return nil, false, ErrNeedsJSON
	case events.typ != bsoncore.TypeArray:
		return nil, false, fmt.Errorf("%w: events is %s, not an array", ErrMalformed, events.typ)
	case !wellFormed(doc, events.vs, events.ve):
		return nil, false, ErrNeedsJSON
	}
	var evs []element
	elements(doc, events.vs, func(e element) { evs = append(evs, e) })
	if len(evs) == 0 {
		return nil, false, ErrNothingToRewrite
	}
	var edits []ojson.Edit
	containers := append(make([]int, 0, 16), 0, events.vs)
	anyChanged := false
	for i, ev := range evs {
		if ev.typ != bsoncore.TypeEmbeddedDocument {
			continue
		}
		p, found, dup := only(doc, ev.vs, FieldPayload)
		if dup {
			return nil, false, ErrNeedsJSON
		}
		if !found || p.typ != bsoncore.TypeEmbeddedDocument {
			continue
		}
		changed, err := w.payload(doc, p.vs, w.journal, w.journalTrie, &edits, &containers)
		if errors.Is(err, ErrNeedsJSON) {
			return nil, false, err
		}
		if err != nil {
			return nil, false, fmt.Errorf("event %d: %w", i, err)
		}
		if changed {
			containers = append(containers, ev.vs)
			anyChanged = true
		}
	}
	if !anyChanged {
		return doc, false, nil
	}
	return splice(doc, edits, containers), true, nil
}

// splice applies the edits (each inside every container it belongs to,
// none overlapping) and rewrites the length of every container.
func splice(b []byte, edits []ojson.Edit, containers []int) []byte {
	out := ojson.Splice(b, edits) // sorts edits by start
	for i, c := range containers {
		if slices.Contains(containers[:i], c) {
			continue
		}
		n := int(int32(binary.LittleEndian.Uint32(b[c:])))
		before, inside := 0, 0
		for _, e := range edits {
			switch {
			case e.Start < c:
				before += e.Delta()
			case e.Start < c+n:
				inside += e.Delta()
			}
		}
		binary.LittleEndian.PutUint32(out[c+before:], uint32(n+inside))
	}
	return out
}
