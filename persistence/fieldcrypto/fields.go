package fieldcrypto

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dittoconn/dittoconn/internal/ojson"
)

// Fields applies encryption to the string values at Pointers of a JSON
// object. Current encrypts and is tried first for decryption; Old is the
// decryption fallback during a key rotation. Nil Pointers means
// DefaultPointers (a non-nil empty slice means no fields at all).
//
// Documents are rewritten in place at the byte level: key order, numbers,
// whitespace and every value not at a pointer stay exactly as they were.
// When nothing changes, the input slice itself is returned.
// (Ditto itself moves patched keys to the front of their objects; key order
// carries no meaning for either side, so keeping it is the safer choice.)
type Fields struct {
	Current, Old *Cipher
	Pointers     []string
}

// FieldError names the pointer whose value could not be processed. It
// never contains the value.
type FieldError struct {
	Pointer string
	Err     error
	msg     string
}

func (e *FieldError) Error() string {
	if e.msg != "" {
		return fmt.Sprintf("encryption: field at <%s>: %s", e.Pointer, e.msg)
	}
	return fmt.Sprintf("encryption: field at <%s>: %v", e.Pointer, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Encrypt encrypts every value at the pointers (after prefix, e.g.
// "/connection" for journal events, "" for snapshots) with Current. Like
// Ditto it does not look for values that are encrypted already: applying it
// twice encrypts twice.
func (f *Fields) Encrypt(doc []byte, prefix string) ([]byte, error) {
	if f.Current == nil {
		return nil, ErrNoKey
	}
	out, _, err := f.rewrite(doc, prefix, func(_, v string) (string, error) {
		return encryptValue(v, f.Current)
	})
	return out, err
}

// Decrypt decrypts the values (and URI passwords) at the pointers that start
// with Prefix, trying Current and then Old; anything else passes through.
// When no configured key can decrypt a value the error names its pointer.
func (f *Fields) Decrypt(doc []byte, prefix string) ([]byte, error) {
	out, _, err := f.rewrite(doc, prefix, decrypter(f.Current, f.Old))
	return out, err
}

// IsEncrypted reports whether any value at the pointers is encrypted: it
// starts with Prefix, or it is a URI whose user-info password does. An
// unreadable document counts as not encrypted.
func (f *Fields) IsEncrypted(doc []byte, prefix string) bool {
	found := false
	_, _, err := f.rewrite(doc, prefix, func(_, v string) (string, error) {
		found = found || isEncryptedValue(v)
		return v, nil
	})
	return err == nil && found
}

// EncryptValue encrypts one field value by Ditto's rule: a URI with a scheme
// and "user:password" user-info gets only its password encrypted, any other
// URI with a scheme stays as it is, everything else is encrypted whole.
func (c *Cipher) EncryptValue(v string) (string, error) { return encryptValue(v, c) }

// DecryptValue reverses EncryptValue; values (or URI passwords) without
// Prefix come back unchanged.
func (c *Cipher) DecryptValue(v string) (string, error) {
	return decryptValue(v, []*Cipher{c})
}

// IsEncryptedValue reports whether v, a single field value, is encrypted as
// a whole or in its URI password.
func IsEncryptedValue(v string) bool { return isEncryptedValue(v) }

func encryptValue(v string, c *Cipher) (string, error) {
	switch kind, ui, _ := classify(v); kind {
	case kindWhole:
		return c.EncryptString(v)
	case kindPassword:
		pw, err := c.EncryptString(uriPassword(ui))
		if err != nil {
			return "", err
		}
		return replacePassword(v, ui, pw), nil
	default:
		return v, nil
	}
}

func decryptValue(v string, keys []*Cipher) (string, error) {
	switch kind, ui, _ := classify(v); kind {
	case kindWhole:
		return decryptWithKeys(v, keys)
	case kindPassword:
		pw, err := decryptWithKeys(uriPassword(ui), keys)
		if err != nil {
			return "", err
		}
		// Rebuilt even when the password was plaintext, as Ditto does; for
		// all but the odd cases described at replacePassword that yields v.
		return replacePassword(v, ui, pw), nil
	default:
		return v, nil
	}
}

func isEncryptedValue(v string) bool {
	if strings.HasPrefix(v, Prefix) {
		return true
	}
	kind, ui, _ := classify(v)
	return kind == kindPassword && strings.HasPrefix(uriPassword(ui), Prefix)
}

// errAllKeysFailed is the reason text when several keys were tried.
var errAllKeysFailed = fmt.Errorf("%w with every configured key", ErrDecrypt)

// decryptWithKeys tries the keys in order; plaintext passes through.
func decryptWithKeys(v string, keys []*Cipher) (string, error) {
	if !strings.HasPrefix(v, Prefix) {
		return v, nil
	}
	last := ErrNoKey
	tried := 0
	for _, k := range keys {
		if k == nil {
			continue
		}
		tried++
		s, err := k.DecryptString(v)
		if err == nil {
			return s, nil
		}
		last = err
	}
	if tried > 1 {
		return "", errAllKeysFailed
	}
	return "", last
}

func decrypter(keys ...*Cipher) func(ptr, v string) (string, error) {
	return func(_, v string) (string, error) { return decryptValue(v, keys) }
}

// pointers returns the configured pointers with prefix applied as Ditto does
// ("connection" and "/connection" are the same prefix).
func (f *Fields) pointers(prefix string) []string {
	ps := f.Pointers
	if ps == nil {
		ps = DefaultPointers
	}
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = prefix + p
	}
	return out
}

// Path is a configured pointer with a prefix applied, split into the object
// keys it descends (Ditto's JsonPointer: no array indexes).
type Path struct {
	Pointer string
	Keys    []string
}

// Paths returns the pointers with prefix applied (as Encrypt and the other
// document methods use them), parsed once, so a caller that finds values
// itself (see ValuesFunc) walks the same keys. Pointers naming the root are
// left out: the root is an object, never a string.
func (f *Fields) Paths(prefix string) ([]Path, error) {
	var out []Path
	for _, p := range f.pointers(prefix) {
		keys, err := splitPointer(p)
		if err != nil {
			return nil, err
		}
		if len(keys) > 0 {
			out = append(out, Path{Pointer: p, Keys: keys})
		}
	}
	return out, nil
}

// splitPointer parses a pointer like Ditto's JsonPointer: empty segments are
// ignored, "~0" stands for "~", and "//" is an error.
func splitPointer(p string) ([]string, error) {
	if strings.Contains(p, "//") {
		return nil, fmt.Errorf("encryption: invalid json-pointer <%s>: consecutive slashes", p)
	}
	var keys []string
	for _, k := range strings.Split(p, "/") {
		if k != "" {
			keys = append(keys, strings.ReplaceAll(k, "~0", "~"))
		}
	}
	return keys, nil
}

// Value is one string value found at a pointer of a document, for a
// ValuesFunc: In is the value as stored, Out the value to store.
type Value struct {
	Pointer string // the pointer (prefix applied) that names the value
	In, Out string
}

// ValuesFunc is a Transform that works on the values alone, so a caller can
// find and replace them in any representation of the document (the
// migration does it in BSON). vals are the string values at the pointers in
// pointer order, each location once. It sets every Out (Out == In where
// nothing changes) and reports whether any Out differs from its In; on an
// error or no change every Out equals its In. The outcomes are those of the
// Transform of the same name.
type ValuesFunc func(vals []Value) (changed bool, err error)

// apply sets each Out to fn(In), stopping at the first error.
func apply(vals []Value, fn func(ptr, v string) (string, error)) (bool, error) {
	changed := false
	for i := range vals {
		nv, err := fn(vals[i].Pointer, vals[i].In)
		if err != nil {
			keep(vals)
			return false, fieldError(vals[i].Pointer, err)
		}
		vals[i].Out = nv
		changed = changed || nv != vals[i].In
	}
	return changed, nil
}

// keep undoes every change.
func keep(vals []Value) {
	for i := range vals {
		vals[i].Out = vals[i].In
	}
}

// rewrite calls fn with each string value found at the pointers of doc and
// splices the results in. Like Ditto, every value is computed from the
// original document, and a location named by several pointers is handled
// once (Ditto computes it twice and keeps one result). changed reports
// whether any value differs.
func (f *Fields) rewrite(doc []byte, prefix string, fn func(ptr, v string) (string, error)) ([]byte, bool, error) {
	return f.rewriteValues(doc, prefix, func(vals []Value) (bool, error) { return apply(vals, fn) })
}

// rewriteValues finds the values at the pointers of doc, lets vf decide and
// splices the changed ones in; doc itself comes back when nothing changed.
func (f *Fields) rewriteValues(doc []byte, prefix string, vf ValuesFunc) ([]byte, bool, error) {
	spans, err := f.locate(doc, prefix)
	if err != nil {
		return nil, false, err
	}
	vals := make([]Value, len(spans))
	for i, sp := range spans {
		var v string
		if err := json.Unmarshal(doc[sp.start:sp.end], &v); err != nil {
			return nil, false, fmt.Errorf("encryption: field at <%s>: reading string: %w", sp.ptr, err)
		}
		vals[i] = Value{Pointer: sp.ptr, In: v, Out: v}
	}
	changed, err := vf(vals)
	if err != nil {
		return nil, false, err
	}
	if !changed {
		return doc, false, nil
	}
	var edits []ojson.Edit
	for i, sp := range spans {
		if vals[i].Out == vals[i].In {
			continue
		}
		// GoJSON: '&', '<' and '>' in URIs stay readable as Ditto writes them.
		edits = append(edits, ojson.Edit{Start: sp.start, End: sp.end, Repl: ojson.GoJSON.Quote(vals[i].Out)})
	}
	return ojson.Splice(doc, edits), true, nil
}

func fieldError(ptr string, err error) error {
	fe := &FieldError{Pointer: ptr, Err: err}
	if errors.Is(err, errAllKeysFailed) {
		fe.msg = "decryption failed with both the current and the old key; " +
			"check that the configured keys match the keys the data was encrypted with"
	} else if errors.Is(err, ErrDecrypt) {
		fe.msg = "decryption failed; check that the configured key matches the key the data was encrypted with"
	}
	return fe
}

type span struct {
	start, end int // the string value, quotes included
	ptr        string
}

// locate finds the string values at the pointers, in pointer order (the
// order Ditto processes them in), each location once.
func (f *Fields) locate(doc []byte, prefix string) ([]span, error) {
	if !json.Valid(doc) {
		return nil, errors.New("encryption: document is not valid JSON")
	}
	if ojson.KindOfText(doc) != ojson.KindObject {
		return nil, errors.New("encryption: document is not a JSON object")
	}
	var spans []span
	seen := map[int]bool{}
	for _, p := range f.pointers(prefix) {
		keys, err := splitPointer(p)
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			continue // the root itself is an object, never a string
		}
		start, end, ok := ojson.Find(doc, keys)
		if ok && doc[start] == '"' && !seen[start] {
			seen[start] = true
			spans = append(spans, span{start, end, p})
		}
	}
	return spans, nil
}
