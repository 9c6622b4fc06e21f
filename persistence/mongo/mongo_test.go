package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/persistence/persistencetest"
)

// testURI is the server under test: DITTOCONN_TEST_MONGO_URI (a real
// MongoDB), else an embedded FerretDB on SQLite started by TestMain.
var testURI string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if uri := os.Getenv("DITTOCONN_TEST_MONGO_URI"); uri != "" {
		testURI = uri
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "dittoconn-ferretdb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	f, err := ferretdb.New(&ferretdb.Config{
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// MongoDBURI blocks until the listener is up; Run failing first must not hang the test binary.
	uri := make(chan string, 1)
	go func() { uri <- f.MongoDBURI() }()
	select {
	case testURI = <-uri:
	case err := <-done:
		done <- err
		fmt.Fprintln(os.Stderr, "ferretdb stopped before listening:", err)
		return 1
	case <-time.After(time.Minute):
		fmt.Fprintln(os.Stderr, "ferretdb did not start listening within a minute")
		return 1
	}
	return m.Run()
}

var dbSeq atomic.Int64

// newDatabase names a database of its own for one test and drops it afterwards.
func newDatabase(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("dittoconn_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client, err := driver.Connect(options.Client().ApplyURI(testURI))
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer client.Disconnect(ctx)
		if err := client.Database(name).Drop(ctx); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return name
}

func openStore(t *testing.T, database string, opts ...Option) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, testURI, database, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func closeStore(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestConformance(t *testing.T) {
	persistencetest.Run(t, func(t *testing.T) *persistencetest.Harness {
		database := newDatabase(t)
		cur := openStore(t, database)
		t.Cleanup(func() { closeStore(t, cur) })
		return &persistencetest.Harness{
			Store:        cur,
			NestedArrays: os.Getenv("DITTOCONN_TEST_MONGO_URI") != "",
			Reopen: func(t *testing.T) persistence.Store {
				closeStore(t, cur)
				cur = openStore(t, database)
				return cur
			},
			Raw: func(t *testing.T, collection string) []bson.Raw {
				return rawDocs(t, cur, collection)
			},
			Insert: func(t *testing.T, collection string, doc bson.Raw) {
				t.Helper()
				if _, err := cur.Database().Collection(collection).InsertOne(context.Background(), doc); err != nil {
					t.Fatalf("insert into %s: %v", collection, err)
				}
			},
		}
	})
}

func rawDocs(t *testing.T, s *Store, collection string) []bson.Raw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cur, err := s.Database().Collection(collection).Find(ctx, bson.D{})
	if err != nil {
		t.Fatalf("find in %s: %v", collection, err)
	}
	defer cur.Close(ctx)
	var out []bson.Raw
	for cur.Next(ctx) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		t.Fatalf("find in %s: %v", collection, err)
	}
	return out
}

type indexInfo struct {
	keys           string
	unique, sparse bool
}

func listIndexes(t *testing.T, db *driver.Database, collection string) map[string]indexInfo {
	t.Helper()
	specs, err := db.Collection(collection).Indexes().ListSpecifications(context.Background())
	if err != nil {
		t.Fatalf("list indexes of %s: %v", collection, err)
	}
	out := map[string]indexInfo{}
	for _, sp := range specs {
		out[sp.Name] = indexInfo{keys: sp.KeysDocument.String(), unique: sp.Unique != nil && *sp.Unique, sparse: sp.Sparse != nil && *sp.Sparse}
	}
	return out
}

func TestOpenCreatesDittoIndexes(t *testing.T) {
	s := openStore(t, newDatabase(t))
	defer closeStore(t, s)
	want := map[string]map[string]indexInfo{
		document.JournalCollection: {
			"connection_journal_index": {keys: `{"pid": {"$numberInt":"1"},"from": {"$numberInt":"1"},"to": {"$numberInt":"1"}}`, unique: true},
			"max_sequence_sort":        {keys: `{"pid": {"$numberInt":"1"},"to": {"$numberInt":"-1"}}`},
			"journal_tag_index":        {keys: `{"_tg": {"$numberInt":"1"}}`, sparse: true},
			"ditto_tag_pid":            {keys: `{"_tg": {"$numberInt":"1"},"pid": {"$numberInt":"1"}}`, sparse: true},
		},
		document.SnapshotCollection: {
			"connection_snaps_index": {keys: `{"pid": {"$numberInt":"1"},"sn": {"$numberInt":"-1"},"ts": {"$numberInt":"-1"}}`, unique: true},
			"snaps_pid_sn_id_index":  {keys: `{"pid": {"$numberInt":"1"},"sn": {"$numberInt":"-1"},"_id": {"$numberInt":"1"}}`},
		},
		document.MetadataCollection: {
			"connection_metadata_index": {keys: `{"pid": {"$numberInt":"1"}}`, unique: true, sparse: true},
		},
	}
	for coll, indexes := range want {
		got := listIndexes(t, s.Database(), coll)
		for name, w := range indexes {
			g, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s: index %s missing (have %v)", coll, name, got)
			case g.keys != w.keys || g.unique != w.unique:
				t.Errorf("%s: index %s = %+v, want %+v", coll, name, g, w)
			case g.sparse != w.sparse && os.Getenv("DITTOCONN_TEST_MONGO_URI") != "":
				// FerretDB accepts sparse but does not report it (its issue 2448); MongoDB must.
				t.Errorf("%s: index %s sparse = %v, want %v", coll, name, g.sparse, w.sparse)
			}
		}
	}
}

// Opening a database Ditto already set up, with an index of the same name
// but other options, must neither fail nor touch that index.
func TestOpenKeepsExistingIndexes(t *testing.T) {
	database := newDatabase(t)
	first := openStore(t, database)
	closeStore(t, first)

	client, err := driver.Connect(options.Client().ApplyURI(testURI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	db := client.Database(database)
	if err := db.Collection(document.JournalCollection).Indexes().DropOne(context.Background(), "ditto_tag_pid"); err != nil {
		t.Fatalf("drop index: %v", err)
	}
	if _, err := db.Collection(document.JournalCollection).Indexes().CreateOne(context.Background(), driver.IndexModel{
		Keys: bson.D{{Key: "_tg", Value: 1}, {Key: "pid", Value: 1}}, Options: options.Index().SetName("ditto_tag_pid"),
	}); err != nil {
		t.Fatalf("create index: %v", err)
	}

	// New over a borrowed client: EnsureIndexes is explicit and Close leaves the client connected.
	s := New(client, database)
	if err := s.EnsureIndexes(context.Background()); err != nil {
		t.Fatalf("EnsureIndexes over existing indexes: %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(context.Background(), nil); err != nil {
		t.Errorf("borrowed client disconnected by Close: %v", err)
	}
	if got := listIndexes(t, db, document.JournalCollection); len(got) != 5 { // 4 + _id_
		t.Errorf("journal indexes after reopening: %v", got)
	}
}

// Calls without a deadline get the store's default one.
func TestDefaultDeadline(t *testing.T) {
	s := openStore(t, newDatabase(t))
	defer closeStore(t, s)
	WithTimeout(time.Nanosecond)(s)
	_, err := s.HighestSeq(context.Background(), "connection:x")
	if !errors.Is(err, context.DeadlineExceeded) && !driver.IsTimeout(err) {
		t.Errorf("HighestSeq with a 1ns default timeout = %v, want a deadline error", err)
	}
}
