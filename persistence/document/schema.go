package document

import "go.mongodb.org/mongo-driver/v2/bson"

// Index is one MongoDB index as Ditto creates it. The names matter: Ditto
// looks indexes up by name, and creating a same-named index with other
// options fails on MongoDB.
type Index struct {
	Name   string
	Keys   bson.D // field → int32 1 or -1, in order
	Unique bool
	Sparse bool
}

// Collection is a collection and the indexes Ditto keeps on it.
type Collection struct {
	Name    string
	Indexes []Index
}

// Collections returns the collections dittoconn writes, with Ditto's indexes
// (connectivity defaults: of the optional snapshot aggregation indexes only
// snaps_pid_sn_id_index is enabled). It returns a fresh copy each call.
func Collections() []Collection {
	asc, desc := int32(1), int32(-1)
	return []Collection{
		{Name: JournalCollection, Indexes: []Index{
			{Name: "connection_journal_index", Keys: bson.D{{Key: FieldPID, Value: asc}, {Key: FieldFrom, Value: asc}, {Key: FieldTo, Value: asc}}, Unique: true},
			{Name: "max_sequence_sort", Keys: bson.D{{Key: FieldPID, Value: asc}, {Key: FieldTo, Value: desc}}},
			{Name: "journal_tag_index", Keys: bson.D{{Key: FieldTags, Value: asc}}, Sparse: true},
			{Name: "ditto_tag_pid", Keys: bson.D{{Key: FieldTags, Value: asc}, {Key: FieldPID, Value: asc}}, Sparse: true},
		}},
		{Name: SnapshotCollection, Indexes: []Index{
			{Name: "connection_snaps_index", Keys: bson.D{{Key: FieldPID, Value: asc}, {Key: FieldSeq, Value: desc}, {Key: FieldTS, Value: desc}}, Unique: true},
			{Name: "snaps_pid_sn_id_index", Keys: bson.D{{Key: FieldPID, Value: asc}, {Key: FieldSeq, Value: desc}, {Key: FieldID, Value: asc}}},
		}},
		{Name: MetadataCollection, Indexes: []Index{
			{Name: "connection_metadata_index", Keys: bson.D{{Key: FieldPID, Value: asc}}, Unique: true, Sparse: true},
		}},
	}
}
