package gateway

import (
	"net/http"
	"testing"
)

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
