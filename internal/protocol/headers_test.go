package protocol

import "testing"

func TestExternalHeadersDropsOnlyDittosInternalHeaders(t *testing.T) {
	h := map[string]string{"correlation-id": "c", "Divert-Response-To-Connection": "x", "diverted-response-from-connection": "y"}
	got := ExternalHeaders(h)
	if len(got) != 2 || got["correlation-id"] != "c" || got["diverted-response-from-connection"] != "y" {
		t.Fatalf("got %v", got)
	}
	if len(h) != 3 {
		t.Fatalf("input modified: %v", h)
	}
}
