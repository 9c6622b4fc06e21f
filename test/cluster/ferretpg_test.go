package cluster

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dittoconn/dittoconn/test/blackbox"
)

// The cluster tests' MongoDB-wire server: FerretDB's PostgreSQL handler on
// the machine's PostgreSQL. FerretDB pushes equality filters on top-level
// fields down to PostgreSQL there, while its SQLite handler reads and
// decodes every document of a collection in Go for each query (about 90 ms
// per connection recovered at 300 connections, which would measure
// FerretDB instead of the failover). DITTOCONN_TEST_MONGO_URI (a real
// MongoDB) wins over both.
var (
	pgFerretOnce sync.Once
	pgFerretURI  string
	pgFerretErr  error
)

func clusterMongoURI(t *testing.T) string {
	t.Helper()
	if uri := os.Getenv("DITTOCONN_TEST_MONGO_URI"); uri != "" {
		return uri
	}
	blackbox.NeedBroker(t, "PostgreSQL", "127.0.0.1:5432")
	pgFerretOnce.Do(func() {
		url := os.Getenv("DITTOCONN_TEST_POSTGRES_URL")
		if url == "" {
			url = "postgres://postgres@127.0.0.1:5432/test"
		}
		var f *ferretdb.FerretDB
		f, pgFerretErr = ferretdb.New(&ferretdb.Config{
			Handler:       "postgresql",
			PostgreSQLURL: url,
			Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4})),
			Listener:      ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		})
		if pgFerretErr != nil {
			return
		}
		go func() { _ = f.Run(context.Background()) }() // lives as long as the test binary
		pgFerretURI = f.MongoDBURI()
	})
	if pgFerretErr != nil {
		t.Fatalf("FerretDB on PostgreSQL: %v", pgFerretErr)
	}
	return pgFerretURI
}

// dropDatabase removes a test's database (a PostgreSQL schema behind
// FerretDB) when the test ends.
func dropDatabase(t *testing.T, uri, db string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := driver.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			return
		}
		defer c.Disconnect(ctx)
		_ = c.Database(db).Drop(ctx)
	})
}
