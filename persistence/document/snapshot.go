package document

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/dittoconn/dittoconn/persistence"
)

// Snapshot builds the snapshot document of s: _id, pid, sn, ts, s2. A zero id
// leaves _id out, as Ditto's replaceOne-with-upsert does: the server assigns
// it on insert and keeps the existing one on replace.
func Snapshot(id bson.ObjectID, s persistence.Snapshot) (bson.Raw, error) {
	if err := CheckPID(s.PID); err != nil {
		return nil, err
	}
	if s.Seq < 0 || s.Timestamp < 0 {
		return nil, fmt.Errorf("%w: snapshot %s: negative sn %d or ts %d", ErrMalformed, s.PID, s.Seq, s.Timestamp)
	}
	start, dst := bsoncore.AppendDocumentStart(make([]byte, 0, 64+len(s.PID)+len(s.Payload)))
	if !id.IsZero() {
		dst = bsoncore.AppendObjectIDElement(dst, FieldID, id)
	}
	dst = bsoncore.AppendStringElement(dst, FieldPID, s.PID)
	dst = bsoncore.AppendInt64Element(dst, FieldSeq, s.Seq)
	dst = bsoncore.AppendInt64Element(dst, FieldTS, s.Timestamp)
	dst = bsoncore.AppendHeader(dst, bsoncore.TypeEmbeddedDocument, FieldSnapshot)
	var err error
	if dst, err = AppendJSON(dst, s.Payload); err != nil {
		return nil, fmt.Errorf("snapshot %s/%d: %w", s.PID, s.Seq, err)
	}
	return bsoncore.AppendDocumentEnd(dst, start)
}

// DecodeSnapshot reads a snapshot document back (s2 as JSON).
func DecodeSnapshot(doc bson.Raw) (persistence.Snapshot, error) {
	var s persistence.Snapshot
	s.PID, _ = doc.Lookup(FieldPID).StringValueOK()
	var ok bool
	if s.Seq, ok = doc.Lookup(FieldSeq).AsInt64OK(); !ok {
		return s, fmt.Errorf("%w: snapshot of %q without sn", ErrMalformed, s.PID)
	}
	s.Timestamp, _ = doc.Lookup(FieldTS).AsInt64OK()
	s2, ok := doc.Lookup(FieldSnapshot).DocumentOK()
	if !ok {
		// ss (v1 binary) and binary s2 are legacy formats Ditto no longer writes.
		return s, fmt.Errorf("%w: snapshot %s/%d: s2 is not a document (legacy format?)", ErrMalformed, s.PID, s.Seq)
	}
	js, err := ToJSON(s2)
	if err != nil {
		return s, fmt.Errorf("snapshot %s/%d: %w", s.PID, s.Seq, err)
	}
	s.Payload = js
	return s, nil
}
