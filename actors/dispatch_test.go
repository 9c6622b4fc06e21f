package actors

import (
	"testing"

	"github.com/dittoconn/dittoconn/internal/model"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

func TestEntityID(t *testing.T) {
	for _, tc := range []struct {
		name, typ, payload string
		id, code           string
	}{
		{"connectionId", ditto.RetrieveConnection, `{"connectionId":"a-1"}`, "a-1", ""},
		{"connection id", ditto.CreateConnection, `{"connection":{"id":"c:1","connectionType":"mqtt","connectionStatus":"closed","uri":"tcp://h:1883","sources":[{"addresses":["a"],"authorizationContext":["x:y"],"qos":0}]}}`, "c:1", ""},
		{"missing connectionId", ditto.OpenConnection, `{}`, "", ditto.CodeJSONFieldMissing},
		{"invalid id", ditto.OpenConnection, `{"connectionId":"a b"}`, "", ditto.CodeConnectionIDInvalid},
		{"empty id", ditto.SudoRetrieveConnectionTags, `{"connectionId":""}`, "", ditto.CodeConnectionIDInvalid},
		{"empty connection", ditto.TestConnection, `{"connection":{}}`, "", ditto.CodeJSONFieldMissing},
		{"null connection", ditto.CreateConnection, `{"connection":null}`, "", ditto.CodeJSONFieldMissing},
		{"not JSON", ditto.RetrieveConnection, `{`, "", ditto.CodeJSONFormatInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := EntityID(&pb.Command{Type: tc.typ, Payload: []byte(tc.payload)})
			if tc.code == "" {
				if err != nil || id != tc.id {
					t.Fatalf("EntityID = %q, %v; want %q", id, err, tc.id)
				}
				return
			}
			if err == nil || err.Code != tc.code || err.Status != 400 {
				t.Fatalf("EntityID error = %v, want 400 %s", err, tc.code)
			}
		})
	}
}

// FuzzEntityID: command decoding never panics; it yields a valid id or a 4xx
// Ditto error.
func FuzzEntityID(f *testing.F) {
	for _, s := range []string{`{"connectionId":"x"}`, `{"connection":{"id":"y"}}`, `{"connectionId":5}`, `[]`, `null`, ``} {
		f.Add(ditto.RetrieveConnection, s)
		f.Add(ditto.CreateConnection, s)
	}
	f.Fuzz(func(t *testing.T, typ, payload string) {
		id, err := EntityID(&pb.Command{Type: typ, Payload: []byte(payload)})
		if err != nil {
			if err.Status < 400 || err.Status >= 500 {
				t.Fatalf("status %d for %q", err.Status, payload)
			}
			return
		}
		if !model.ValidID(id) {
			t.Fatalf("invalid id %q accepted from %q", id, payload)
		}
	})
}
