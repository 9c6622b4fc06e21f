// Package document is dittoconn's one document model: Ditto's MongoDB
// collections, their indexes, and the journal, snapshot and metadata documents
// exactly as Ditto (through its Pekko persistence plugin) writes them. Both
// engines store these very documents: the mongo engine as documents, the bolt
// engine as their BSON bytes, so data can move between them (and between
// dittoconn and Ditto) without a translation step.
package document

import "errors"

// ErrMalformed marks a document or payload that does not have the shape this
// package writes and reads.
var ErrMalformed = errors.New("document: malformed")

// Collection names (Ditto's connectivity defaults).
const (
	JournalCollection             = "connection_journal"
	SnapshotCollection            = "connection_snaps"
	MetadataCollection            = "connection_metadata"
	EncryptionMigrationCollection = "connection_encryption_migration" // reserved for the migration's progress document
)

// Field names of the journal, snapshot and metadata documents.
const (
	FieldID       = "_id"
	FieldPID      = "pid"
	FieldFrom     = "from"
	FieldTo       = "to"
	FieldEvents   = "events"
	FieldVersion  = "v"
	FieldTags     = "_tg"
	FieldSeq      = "sn"
	FieldHint     = "_t"
	FieldPayload  = "p"
	FieldManifest = "manifest"
	FieldWriter   = "_w"
	FieldTS       = "ts"
	FieldSnapshot = "s2"
	FieldMaxSeq   = "max_sn"
)

// Fixed values of the journal format.
const (
	FormatVersion int32 = 1      // v: current (non-legacy) document format
	HintBSON            = "bson" // _t: the payload p is a BSON document
)
