package blackbox

import (
	"context"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	"github.com/dittoconn/dittoconn/persistence/mongo"
)

// OpenBoltAt opens the embedded store the binary used in dir, after it stopped.
func OpenBoltAt(t *testing.T, dir string) persistence.Store {
	t.Helper()
	s, err := bolt.Open(dir)
	if err != nil {
		t.Fatalf("open bolt store: %v", err)
	}
	return s
}

// OpenMongoAt opens the MongoDB store the binary used, after it stopped.
func OpenMongoAt(t *testing.T, uri, db string) persistence.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := mongo.Open(ctx, uri, db)
	if err != nil {
		t.Fatalf("open mongo store: %v", err)
	}
	return s
}
