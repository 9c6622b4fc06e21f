package blackbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
	"github.com/dittoconn/dittoconn/persistence/mongo"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// The migration singleton's actor path, and two field-encryption keys
// (A is Ditto's public test key) that the rotation tests move between.
const (
	MigrationPath = ditto.PathEncryptionMigration
	EncKeyA       = "vJFSTPE9PO2BtZlcMAwNjs8jdFvQCk0Ya9MVdYjRJUU="
	EncKeyB       = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// SecuredConnection is an MQTT connection whose URI carries a password
// ("pw-" + id) for the field encryption to protect.
func SecuredConnection(id string) map[string]any {
	c := MQTTConnection(id, "closed", "enc")
	c["uri"] = "tcp://user:pw-" + id + "@127.0.0.1:1883"
	return c
}

// CounterSum reads the processed, skipped and failed counts of one
// collection's entry in a migration status.
func CounterSum(m map[string]any, key string) (processed, skipped, failed int) {
	c, _ := m[key].(map[string]any)
	f := func(k string) int { v, _ := c[k].(float64); return int(v) }
	return f("processed"), f("skipped"), f("failed")
}

// WantRotated checks the stored URIs of want connections (a snapshot and an
// event each): every password decrypts with B to its plaintext ("pw-" +
// prefix…) and none with A.
func WantRotated(t *testing.T, engine persistence.Store, want int, prefix string) {
	t.Helper()
	a, b := KeyCipher(t, EncKeyA), KeyCipher(t, EncKeyB)
	uris := StoredURIs(t, engine)
	if len(uris) != 2*want {
		t.Fatalf("%d stored uris, want %d", len(uris), 2*want)
	}
	for _, u := range uris {
		pw := u[strings.Index(u, "user:")+5 : strings.LastIndex(u, "@")]
		if _, err := a.DecryptString(pw); err == nil {
			t.Fatal("a secret still decrypts with A")
		}
		if pt, err := b.DecryptString(pw); err != nil || !strings.HasPrefix(pt, "pw-"+prefix) {
			t.Fatalf("a secret does not decrypt with B to its plaintext: %v", err)
		}
	}
}

// RawDocs reads every document of a collection as stored, on either engine.
func RawDocs(t *testing.T, engine persistence.Store, coll string) []bson.Raw {
	t.Helper()
	var out []bson.Raw
	switch e := engine.(type) {
	case *bolt.Store:
		if err := e.ForEachRaw(coll, func(d bson.Raw) error { out = append(out, d); return nil }); err != nil {
			t.Fatal(err)
		}
	case *mongo.Store:
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cur, err := e.Database().Collection(coll).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			out = append(out, append(bson.Raw(nil), cur.Current...))
		}
	default:
		t.Fatalf("no raw access to %T", engine)
	}
	return out
}

// StoredURIs returns the uri of every snapshot and connection event at rest.
func StoredURIs(t *testing.T, engine persistence.Store) []string {
	t.Helper()
	var out []string
	for _, d := range RawDocs(t, engine, document.SnapshotCollection) {
		if v, err := d.LookupErr("s2", "uri"); err == nil {
			out = append(out, v.StringValue())
		}
	}
	for _, d := range RawDocs(t, engine, document.JournalCollection) {
		if v, err := d.Lookup("events").Array().Index(0).Document().LookupErr("p", "connection", "uri"); err == nil {
			out = append(out, v.StringValue())
		}
	}
	return out
}

// KeyCipher is the field cipher of a base64 key.
func KeyCipher(t *testing.T, k string) *fieldcrypto.Cipher {
	t.Helper()
	b, err := fieldcrypto.ParseKey(k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := fieldcrypto.NewCipher(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
