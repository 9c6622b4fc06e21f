package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/dittoconn/dittoconn/persistence/document"
)

// The on-disk layout, all in this file.
//
// FileName in the store's directory holds one bucket per collection, named
// exactly as the MongoDB collection, whose values are the BSON documents the
// mongo engine would store. Keys are chosen so the engine's reads are cursor
// seeks:
//
//	connection_journal   pid 0x00 BE(to)          (from == to == sn for documents Ditto and dittoconn write)
//	connection_snaps     pid 0x00 BE(sn) BE(ts)   (last key of a pid = highest sn, then ts)
//	connection_metadata  pid
//	connection_encryption_migration  the _id's BSON type byte and value
//	dittoconn            the engine's own state (no collection): "scrub"
//
// Persistence ids hold no NUL byte (document.CheckPID), so pid 0x00 is a
// prefix of exactly one pid's keys, and all keys of a pid sort together.
// Sequence numbers and timestamps are never negative, so big-endian bytes
// sort as the numbers do.
//
// Each collection whose documents have ObjectId _ids also has a bucket
// "<collection>/_id" mapping the 12 id bytes to the primary key, so documents
// can be scanned in _id order as MongoDB's resumable scans do (the encryption
// migration resumes "after the last processed _id").
const FileName = "dittoconn.db"

// stateBucket is the engine's own, no collection: it holds scrubKey while
// pruned documents' bytes may still be in free pages (see compact.go).
var (
	stateBucket = []byte("dittoconn")
	scrubKey    = []byte("scrub")
)

var (
	journalBucket   = []byte(document.JournalCollection)
	snapshotBucket  = []byte(document.SnapshotCollection)
	metadataBucket  = []byte(document.MetadataCollection)
	migrationBucket = []byte(document.EncryptionMigrationCollection)
)

// buckets lists every bucket Open creates.
var buckets = [][]byte{
	journalBucket, idBucket(document.JournalCollection),
	snapshotBucket, idBucket(document.SnapshotCollection),
	metadataBucket, idBucket(document.MetadataCollection),
	migrationBucket,
	stateBucket,
}

func idBucket(collection string) []byte { return []byte(collection + "/_id") }

// hasIDIndex says whether the collection keeps an _id index bucket.
func hasIDIndex(collection string) bool {
	switch collection {
	case document.JournalCollection, document.SnapshotCollection, document.MetadataCollection:
		return true
	}
	return false
}

func knownCollection(collection string) bool {
	return hasIDIndex(collection) || collection == document.EncryptionMigrationCollection
}

// pidPrefix is the prefix of every key of pid.
func pidPrefix(pid string) []byte {
	return append([]byte(pid), 0)
}

// pidEnd is the first key after every key of pid.
func pidEnd(pid string) []byte {
	return append([]byte(pid), 1)
}

func journalKey(pid string, seq int64) []byte {
	k := make([]byte, 0, len(pid)+9)
	k = append(append(k, pid...), 0)
	return binary.BigEndian.AppendUint64(k, uint64(seq))
}

func snapshotKey(pid string, seq, ts int64) []byte {
	k := make([]byte, 0, len(pid)+17)
	k = append(append(k, pid...), 0)
	k = binary.BigEndian.AppendUint64(k, uint64(seq))
	return binary.BigEndian.AppendUint64(k, uint64(ts))
}

// keyPID returns the pid of a journal or snapshot key.
func keyPID(k []byte) []byte {
	if i := bytes.IndexByte(k, 0); i >= 0 {
		return k[:i]
	}
	return k
}

// primaryKey derives the key of a document from its content, so a document
// written by another engine (or by Ditto) lands where the reads look for it.
func primaryKey(collection string, doc bson.Raw) ([]byte, error) {
	pid, _ := doc.Lookup(document.FieldPID).StringValueOK()
	switch collection {
	case document.JournalCollection, document.SnapshotCollection, document.MetadataCollection:
		if err := document.CheckPID(pid); err != nil {
			return nil, err
		}
	}
	switch collection {
	case document.JournalCollection:
		to, ok := doc.Lookup(document.FieldTo).AsInt64OK()
		if !ok || to < 0 {
			return nil, fmt.Errorf("%w: journal document of %s without a valid to", document.ErrMalformed, pid)
		}
		return journalKey(pid, to), nil
	case document.SnapshotCollection:
		sn, ok1 := doc.Lookup(document.FieldSeq).AsInt64OK()
		ts, ok2 := doc.Lookup(document.FieldTS).AsInt64OK()
		if !ok1 || !ok2 || sn < 0 || ts < 0 {
			return nil, fmt.Errorf("%w: snapshot document of %s without a valid sn and ts", document.ErrMalformed, pid)
		}
		return snapshotKey(pid, sn, ts), nil
	case document.MetadataCollection:
		return []byte(pid), nil
	case document.EncryptionMigrationCollection:
		id, err := doc.LookupErr(document.FieldID)
		if err != nil {
			return nil, fmt.Errorf("%w: document without _id", document.ErrMalformed)
		}
		return append([]byte{byte(id.Type)}, id.Value...), nil
	}
	return nil, fmt.Errorf("bolt: unknown collection %q", collection)
}

// withID returns doc with an ObjectId _id: its own, or a new one put first,
// as the MongoDB driver does on insert.
// doc must be valid.
func withID(doc bson.Raw) (bson.Raw, bson.ObjectID, error) {
	if v, err := doc.LookupErr(document.FieldID); err == nil {
		id, ok := v.ObjectIDOK()
		if !ok {
			return nil, id, fmt.Errorf("%w: _id is %s, not an ObjectId", document.ErrMalformed, v.Type)
		}
		return doc, id, nil
	}
	id := bson.NewObjectID()
	start, out := bsoncore.AppendDocumentStart(make([]byte, 0, len(doc)+17))
	out = bsoncore.AppendObjectIDElement(out, document.FieldID, id)
	out = append(out, doc[4:len(doc)-1]...) // the elements, without length and terminator
	out, err := bsoncore.AppendDocumentEnd(out, start)
	return out, id, err
}
