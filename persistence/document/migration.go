package document

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/dittoconn/dittoconn/persistence"
)

// The encryption migration's documents in connection_encryption_migration.
const (
	ProgressID = "current" // Ditto's progress document
	LeaseID    = "lease"   // dittoconn's lease document (Ditto never reads it)
)

// Field names of the progress document (Ditto's MigrationProgress).
const (
	fieldPhase              = "phase"
	fieldLastSnapshotID     = "lastProcessedSnapshotId"
	fieldLastSnapshotPID    = "lastProcessedSnapshotPid"
	fieldLastJournalID      = "lastProcessedJournalId"
	fieldLastJournalPID     = "lastProcessedJournalPid"
	fieldSnapshotsProcessed = "snapshotsProcessed"
	fieldSnapshotsSkipped   = "snapshotsSkipped"
	fieldSnapshotsFailed    = "snapshotsFailed"
	fieldJournalProcessed   = "journalProcessed"
	fieldJournalSkipped     = "journalSkipped"
	fieldJournalFailed      = "journalFailed"
	fieldStartedAt          = "startedAt"
	fieldUpdatedAt          = "updatedAt"
	fieldOwner              = "owner"
	fieldExpiresAt          = "expiresAt"
)

// Progress builds the progress document in Ditto's key order; counters are
// Int64 (Ditto reads them with getLong), empty ids and pids null.
func Progress(p persistence.MigrationProgress) bson.Raw {
	start, dst := bsoncore.AppendDocumentStart(make([]byte, 0, 512))
	dst = bsoncore.AppendStringElement(dst, FieldID, ProgressID)
	dst = bsoncore.AppendStringElement(dst, fieldPhase, p.Phase)
	for _, f := range []struct{ k, v string }{
		{fieldLastSnapshotID, p.LastSnapshotID}, {fieldLastSnapshotPID, p.LastSnapshotPID},
		{fieldLastJournalID, p.LastJournalID}, {fieldLastJournalPID, p.LastJournalPID},
	} {
		if f.v == "" {
			dst = bsoncore.AppendNullElement(dst, f.k)
		} else {
			dst = bsoncore.AppendStringElement(dst, f.k, f.v)
		}
	}
	for _, f := range []struct {
		k string
		v int64
	}{
		{fieldSnapshotsProcessed, p.SnapshotsProcessed}, {fieldSnapshotsSkipped, p.SnapshotsSkipped},
		{fieldSnapshotsFailed, p.SnapshotsFailed}, {fieldJournalProcessed, p.JournalProcessed},
		{fieldJournalSkipped, p.JournalSkipped}, {fieldJournalFailed, p.JournalFailed},
	} {
		dst = bsoncore.AppendInt64Element(dst, f.k, f.v)
	}
	dst = bsoncore.AppendStringElement(dst, fieldStartedAt, p.StartedAt)
	dst = bsoncore.AppendStringElement(dst, fieldUpdatedAt, p.UpdatedAt)
	dst, _ = bsoncore.AppendDocumentEnd(dst, start)
	return dst
}

// DecodeProgress reads a progress document (Int32 counters are accepted too).
func DecodeProgress(doc bson.Raw) (persistence.MigrationProgress, error) {
	var p persistence.MigrationProgress
	if err := doc.Validate(); err != nil {
		return p, fmt.Errorf("%w: progress document: %v", ErrMalformed, err)
	}
	str := func(k string) string { s, _ := doc.Lookup(k).StringValueOK(); return s }
	p.Phase = str(fieldPhase)
	p.LastSnapshotID, p.LastSnapshotPID = str(fieldLastSnapshotID), str(fieldLastSnapshotPID)
	p.LastJournalID, p.LastJournalPID = str(fieldLastJournalID), str(fieldLastJournalPID)
	p.StartedAt, p.UpdatedAt = str(fieldStartedAt), str(fieldUpdatedAt)
	for k, dst := range map[string]*int64{
		fieldSnapshotsProcessed: &p.SnapshotsProcessed, fieldSnapshotsSkipped: &p.SnapshotsSkipped,
		fieldSnapshotsFailed: &p.SnapshotsFailed, fieldJournalProcessed: &p.JournalProcessed,
		fieldJournalSkipped: &p.JournalSkipped, fieldJournalFailed: &p.JournalFailed,
	} {
		*dst, _ = doc.Lookup(k).AsInt64OK()
	}
	return p, nil
}

// Lease builds the lease document {_id: "lease", owner, expiresAt}.
func Lease(l persistence.Lease) bson.Raw {
	start, dst := bsoncore.AppendDocumentStart(nil)
	dst = bsoncore.AppendStringElement(dst, FieldID, LeaseID)
	dst = bsoncore.AppendStringElement(dst, fieldOwner, l.Owner)
	dst = bsoncore.AppendInt64Element(dst, fieldExpiresAt, l.ExpiresAt)
	dst, _ = bsoncore.AppendDocumentEnd(dst, start)
	return dst
}

// DecodeLease reads a lease document.
func DecodeLease(doc bson.Raw) (persistence.Lease, error) {
	var l persistence.Lease
	var ok bool
	if l.Owner, ok = doc.Lookup(fieldOwner).StringValueOK(); !ok {
		return l, fmt.Errorf("%w: lease document without owner", ErrMalformed)
	}
	l.ExpiresAt, _ = doc.Lookup(fieldExpiresAt).AsInt64OK()
	return l, nil
}

// IDString is a document's _id as the migration records it: the hex of an
// ObjectId, a string as it is, anything else as its extended-JSON text.
func IDString(doc []byte) (string, error) {
	v, err := bson.Raw(doc).LookupErr(FieldID)
	if err != nil {
		return "", fmt.Errorf("%w: document without _id", ErrMalformed)
	}
	if id, ok := v.ObjectIDOK(); ok {
		return id.Hex(), nil
	}
	if s, ok := v.StringValueOK(); ok {
		return s, nil
	}
	return v.String(), nil
}

// PIDOf is a document's pid ("" when it has none).
func PIDOf(doc []byte) string {
	s, _ := bson.Raw(doc).Lookup(FieldPID).StringValueOK()
	return s
}

// HasPath reports whether doc has the dotted path with MongoDB's
// {$exists: true} meaning: null counts as present, and a path through an
// array is present when any element document has the rest of it.
func HasPath(doc []byte, path string) bool {
	return hasPath(bsoncore.Document(doc), strings.Split(path, "."))
}

func hasPath(doc bsoncore.Document, parts []string) bool {
	v, err := doc.LookupErr(parts[0])
	if err != nil {
		return false
	}
	if len(parts) == 1 {
		return true
	}
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		return hasPath(v.Document(), parts[1:])
	case bsoncore.TypeArray:
		arr := v.Array()
		if i, err := strconv.Atoi(parts[1]); err == nil && i >= 0 {
			if el, err := arr.IndexErr(uint(i)); err == nil {
				if len(parts) == 2 {
					return true
				}
				if d, ok := el.DocumentOK(); ok && hasPath(d, parts[2:]) {
					return true
				}
			}
		}
		vals, err := arr.Values()
		if err != nil {
			return false
		}
		for _, el := range vals {
			if d, ok := el.DocumentOK(); ok && hasPath(d, parts[1:]) {
				return true
			}
		}
	}
	return false
}

// ErrNothingToRewrite: the document has no payload the migration could
// rewrite (a snapshot without s2, a journal document without events); the
// migration counts it as skipped.
var ErrNothingToRewrite = errors.New("document: nothing to rewrite")

// RewriteFunc rewrites one payload as JSON; changed false leaves it as it is.
type RewriteFunc func(payload json.RawMessage) (out json.RawMessage, changed bool, err error)

// RewriteSnapshot applies fn to the s2 of a snapshot document and returns
// the whole document with the new s2 (same _id and other fields, same
// order). It returns ErrNothingToRewrite when s2 is missing and an error
// when s2 is not a document (legacy formats).
func RewriteSnapshot(doc []byte, fn RewriteFunc) ([]byte, bool, error) {
	d := bsoncore.Document(doc)
	if err := d.Validate(); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	v, err := d.LookupErr(FieldSnapshot)
	if err != nil {
		return nil, false, ErrNothingToRewrite
	}
	s2, ok := v.DocumentOK()
	if !ok {
		return nil, false, fmt.Errorf("%w: s2 is %s, not a document", ErrMalformed, v.Type)
	}
	js, err := ToJSON(bson.Raw(s2))
	if err != nil {
		return nil, false, err
	}
	out, changed, err := fn(js)
	if err != nil || !changed {
		return doc, false, err
	}
	newS2, err := FromJSON(out)
	if err != nil {
		return nil, false, err
	}
	res, err := replaceElement(d, FieldSnapshot, func(dst []byte) ([]byte, error) {
		return bsoncore.AppendDocumentElement(dst, FieldSnapshot, newS2), nil
	})
	return res, err == nil, err
}

// RewriteJournal applies fn to the p of every event of a journal document
// whose p is a document and returns the whole document with the rewritten
// events (everything else kept). It returns ErrNothingToRewrite when events
// is missing or empty.
func RewriteJournal(doc []byte, fn RewriteFunc) ([]byte, bool, error) {
	d := bsoncore.Document(doc)
	if err := d.Validate(); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	v, err := d.LookupErr(FieldEvents)
	if err != nil {
		return nil, false, ErrNothingToRewrite
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, false, fmt.Errorf("%w: events is %s, not an array", ErrMalformed, v.Type)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(vals) == 0 {
		return nil, false, ErrNothingToRewrite
	}
	newEvents := make([]bsoncore.Document, len(vals))
	anyChanged := false
	for i, ev := range vals {
		evDoc, ok := ev.DocumentOK()
		if !ok {
			continue
		}
		newEvents[i] = evDoc
		pv, err := evDoc.LookupErr(FieldPayload)
		if err != nil {
			continue
		}
		p, ok := pv.DocumentOK()
		if !ok {
			continue
		}
		js, err := ToJSON(bson.Raw(p))
		if err != nil {
			return nil, false, err
		}
		out, changed, err := fn(js)
		if err != nil {
			return nil, false, fmt.Errorf("event %d: %w", i, err)
		}
		if !changed {
			continue
		}
		newP, err := FromJSON(out)
		if err != nil {
			return nil, false, err
		}
		if newEvents[i], err = replaceElement(evDoc, FieldPayload, func(dst []byte) ([]byte, error) {
			return bsoncore.AppendDocumentElement(dst, FieldPayload, newP), nil
		}); err != nil {
			return nil, false, err
		}
		anyChanged = true
	}
	if !anyChanged {
		return doc, false, nil
	}
	res, err := replaceElement(d, FieldEvents, func(dst []byte) ([]byte, error) {
		start, dst := bsoncore.AppendArrayElementStart(dst, FieldEvents)
		for i, ev := range vals {
			if newEvents[i] != nil {
				dst = bsoncore.AppendDocumentElement(dst, strconv.Itoa(i), newEvents[i])
			} else {
				dst = bsoncore.AppendValueElement(dst, strconv.Itoa(i), ev)
			}
		}
		return bsoncore.AppendArrayEnd(dst, start)
	})
	return res, err == nil, err
}

// replaceElement copies d with the element key written by put instead.
func replaceElement(d bsoncore.Document, key string, put func(dst []byte) ([]byte, error)) (bsoncore.Document, error) {
	els, err := d.Elements()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	start, dst := bsoncore.AppendDocumentStart(make([]byte, 0, len(d)+len(d)/4))
	for _, el := range els {
		if el.Key() == key {
			if dst, err = put(dst); err != nil {
				return nil, err
			}
			continue
		}
		dst = append(dst, el...)
	}
	return bsoncore.AppendDocumentEnd(dst, start)
}
