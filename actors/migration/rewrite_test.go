package migration

import (
	"bytes"
	"testing"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
)

// TestRewriteFallsBackToJSON: a document the BSON rewriter leaves to the
// JSON way (a value that is not valid UTF-8) is still migrated, and
// pointers only the JSON way can match get no BSON rewriter at all.
func TestRewriteFallsBackToJSON(t *testing.T) {
	p, err := newPlan(settings(true, keyA, "", 10, 0))
	if err != nil || p.bson == nil {
		t.Fatal(err)
	}
	s2, err := document.FromJSON([]byte(`{"credentials":{"password":"abc"}}`))
	if err != nil {
		t.Fatal(err)
	}
	start, doc := bsoncore.AppendDocumentStart(nil)
	doc = bsoncore.AppendDocumentElement(doc, document.FieldSnapshot, s2)
	doc, _ = bsoncore.AppendDocumentEnd(doc, start)
	doc[bytes.Index(doc, []byte("abc"))+1] = 0xff
	if out, changed, err := p.rewrite(true, doc); err != nil || !changed || !bytes.Contains(out, []byte(fieldcrypto.Prefix)) {
		t.Fatalf("the JSON way did not take over: %v %v", changed, err)
	}
	s := settings(true, keyA, "", 10, 0)
	s.Pointers = []string{"/a\uFFFDb"}
	if p, err := newPlan(s); err != nil || p.bson != nil {
		t.Fatalf("a pointer with U+FFFD must use the JSON way: %v", err)
	}
}
