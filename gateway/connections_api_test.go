package gateway

import (
	"net/http"
	"testing"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Ditto's ConnectionsRoute checks the request's media type before it reads
// the body: JSON (or the fallback application/octet-stream) for a
// connection, text/plain (or the fallback) for a command; anything else is
// 415 mediatype.unsupported and no command is sent.
func TestConnectionsRouteRefusesUnsupportedMediaType(t *testing.T) {
	const conn = `{"connectionType":"mqtt","uri":"tcp://h:1883","sources":[],"targets":[]}`
	jsonAllowed := "Allowed Media-Types are: <[application/octet-stream, application/json]>."
	textAllowed := "Allowed Media-Types are: <[application/octet-stream, text/plain]>."
	tests := []struct {
		name        string
		method      string
		path        string
		ctype       string
		body        string
		wantMessage string // empty: accepted and dispatched
		wantDescr   string
	}{
		{"POST text/plain", http.MethodPost, "/api/2/connections", "text/plain", conn,
			"The Media-Type <text/plain> is not supported for this resource.", jsonAllowed},
		{"PUT text/plain with charset", http.MethodPut, "/api/2/connections/c-1", "text/plain; charset=UTF-8", conn,
			"The Media-Type <text/plain> is not supported for this resource.", jsonAllowed},
		{"dry run application/xml", http.MethodPost, "/api/2/connections?dry-run=true", "application/xml", conn,
			"The Media-Type <application/xml> is not supported for this resource.", jsonAllowed},
		{"command as JSON", http.MethodPost, "/api/2/connections/c-1/command", "application/json", ditto.OpenConnection,
			"The Media-Type <application/json> is not supported for this resource.", textAllowed},
		{"POST JSON with charset", http.MethodPost, "/api/2/connections", "application/json; charset=utf-8", conn, "", ""},
		{"PUT without Content-Type (octet-stream)", http.MethodPut, "/api/2/connections/c-1", "", conn, "", ""},
		{"PUT octet-stream", http.MethodPut, "/api/2/connections/c-1", "application/octet-stream", conn, "", ""},
		{"command text/plain with charset", http.MethodPost, "/api/2/connections/c-1/command", "text/plain; charset=UTF-8", ditto.OpenConnection, "", ""},
		{"command octet-stream", http.MethodPost, "/api/2/connections/c-1/command", "application/octet-stream", ditto.CloseConnection, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := okReply(`{"type":"x","status":200,"connection":{}}`)
			hdr := map[string]string{}
			if tt.ctype != "" {
				hdr["Content-Type"] = tt.ctype
			}
			rec := serve(t, newTestServer(t, d), request{method: tt.method, path: tt.path, body: tt.body, header: hdr})
			if tt.wantMessage == "" {
				if rec.Code >= 400 {
					t.Fatalf("status = %d, want success; body %s", rec.Code, rec.Body.String())
				}
				d.onlyCall(t)
				return
			}
			assertStatus(t, rec, http.StatusUnsupportedMediaType)
			assertJSONBody(t, rec, `{"status":415,"error":"mediatype.unsupported","message":"`+tt.wantMessage+
				`","description":"`+tt.wantDescr+`"}`)
			if n := len(d.recorded()); n != 0 {
				t.Fatalf("dispatcher called %d times", n)
			}
		})
	}
}

// Ditto's ConnectionsRoute answers a PUT whose body id differs from the URL's
// with ConnectionIdNotExplicitlySettableException as it is, the same error
// as an id in a POST body.
func TestConnectionsRoutePutWithOtherBodyIDIsIDNotSettable(t *testing.T) {
	d := okReply(`{}`)
	rec := serve(t, newTestServer(t, d), request{method: http.MethodPut, path: "/api/2/connections/c-1",
		body:   `{"id":"c-2","connectionType":"mqtt","uri":"tcp://h:1883"}`,
		header: map[string]string{"Content-Type": "application/json"}})
	assertStatus(t, rec, http.StatusBadRequest)
	assertJSONBody(t, rec, `{"status":400,"error":"connectivity:id.notsettable",`+
		`"message":"It is not allowed to provide an explicit ID for a connection.",`+
		`"description":"Remove the ID from the connection as it will be generated."}`)
	if n := len(d.recorded()); n != 0 {
		t.Fatalf("dispatcher called %d times", n)
	}
}
