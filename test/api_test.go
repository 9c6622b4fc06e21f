package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// apiResp is one answer of the HTTP API.
type apiResp struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request to the node's HTTP API with the devops
// credentials. body is nil, a string (sent as text) or a value sent as JSON;
// hdr are extra header name/value pairs ("noauth" alone drops credentials).
func apiCall(t *testing.T, n *kit.Node, method, path string, body any, hdr ...string) apiResp {
	t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "text/plain"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	auth := true
	for i := 0; i < len(hdr); i++ {
		if hdr[i] == "noauth" {
			auth = false
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
		i++
	}
	if auth {
		req.SetBasicAuth("devops", kit.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apiResp{status: resp.StatusCode, header: resp.Header, body: out}
}

// wantStatus fails unless r has the status.
func (r apiResp) wantStatus(t *testing.T, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("HTTP %d, want %d: %s", r.status, status, r.body)
	}
}

// wantError checks a Ditto error answer: real status, error JSON, no envelope.
func (r apiResp) wantError(t *testing.T, status int, code string) {
	t.Helper()
	r.wantStatus(t, status)
	m := blackbox.Decode(t, r.body)
	blackbox.WantField(t, m, status, "status")
	blackbox.WantField(t, m, code, "error")
	if _, ok := m["message"].(string); !ok {
		t.Errorf("error without message: %s", r.body)
	}
	if _, has := m["type"]; has {
		t.Errorf("error carries a response type (envelope?): %s", r.body)
	}
}

func (r apiResp) wantEmpty(t *testing.T) {
	t.Helper()
	if len(r.body) != 0 {
		t.Errorf("body = %q, want empty", r.body)
	}
}

// apiPushConn is a connection without a live client type: opening
// and testing it only dial its endpoint.
func apiPushConn(id, uri string) map[string]any {
	c := map[string]any{
		"name":             "push " + id,
		"connectionType":   "http-push",
		"connectionStatus": "closed",
		"uri":              uri,
		"targets": []any{map[string]any{
			"address":              "POST:/events",
			"topics":               []string{"_/_/things/twin/events"},
			"authorizationContext": []string{"nginx:ditto"},
		}},
	}
	if id != "" {
		c["id"] = id
	}
	return c
}

// endpoint is a TCP listener that accepts and closes connections, for
// tests of reachability.
func apiEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

// apiClosedEndpoint is an address nobody listens on.
func apiClosedEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

var apiUUIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

const apiBase = "/api/2/connections"

// TestAPI runs every endpoint of /api/2/connections and its error cases,
// with Ditto's statuses and error JSON, on both engines.
func TestAPI(t *testing.T) {
	for _, eng := range blackbox.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			n := kit.Start(t, eng.Open(t)(), kit.Options{})
			up := apiEndpoint(t)

			t.Run("auth/missing", func(t *testing.T) {
				r := apiCall(t, n, http.MethodGet, apiBase, nil, "noauth")
				r.wantStatus(t, http.StatusUnauthorized)
				if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, "DITTO-DEVOPS") {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			})

			t.Run("post/create", func(t *testing.T) {
				conn := apiPushConn("", up)
				delete(conn, "connectionStatus") // Ditto's route defaults it to unknown
				r := apiCall(t, n, http.MethodPost, apiBase, conn)
				r.wantStatus(t, http.StatusCreated)
				m := blackbox.Decode(t, r.body)
				id, _ := m["id"].(string)
				if !apiUUIDPattern.MatchString(id) {
					t.Fatalf("generated id %q is no UUID", id)
				}
				blackbox.WantField(t, m, "unknown", "connectionStatus")
				blackbox.WantField(t, m, "http-push", "connectionType")
				if loc := r.header.Get("Location"); loc != apiBase+"/"+id {
					t.Errorf("Location = %q", loc)
				}
				apiCall(t, n, http.MethodGet, apiBase+"/"+id, nil).wantStatus(t, http.StatusOK)
			})

			t.Run("post/id-not-settable", func(t *testing.T) {
				apiCall(t, n, http.MethodPost, apiBase, apiPushConn("chosen", up)).
					wantError(t, http.StatusBadRequest, ditto.CodeIDNotSettable)
			})

			t.Run("post/not-json", func(t *testing.T) {
				apiCall(t, n, http.MethodPost, apiBase, "{nope", "Content-Type", "application/json").
					wantError(t, http.StatusBadRequest, ditto.CodeJSONInvalid)
			})

			t.Run("post/text-is-mediatype-unsupported", func(t *testing.T) {
				apiCall(t, n, http.MethodPost, apiBase, "{}").wantError(t, http.StatusUnsupportedMediaType, ditto.CodeMediaTypeUnsupported)
			})

			t.Run("post/not-an-object", func(t *testing.T) {
				apiCall(t, n, http.MethodPost, apiBase, []any{1}).wantError(t, http.StatusBadRequest, ditto.CodeJSONInvalid)
			})

			t.Run("post/invalid-connection", func(t *testing.T) {
				conn := apiPushConn("", up)
				delete(conn, "connectionType")
				apiCall(t, n, http.MethodPost, apiBase, conn).wantError(t, http.StatusBadRequest, ditto.CodeJSONFieldMissing)
			})

			t.Run("post/dry-run", func(t *testing.T) {
				r := apiCall(t, n, http.MethodPost, apiBase+"?dry-run=true", apiPushConn("ignored", up))
				r.wantStatus(t, http.StatusOK)
				r.wantEmpty(t)
				ids := apiCall(t, n, http.MethodGet, apiBase+"?ids-only=true", nil)
				if bytes.Contains(ids.body, []byte("dry-run")) || bytes.Contains(ids.body, []byte("ignored")) {
					t.Errorf("dry run persisted a connection: %s", ids.body)
				}
			})

			t.Run("post/dry-run-unreachable", func(t *testing.T) {
				apiCall(t, n, http.MethodPost, apiBase+"?dry-run=true", apiPushConn("", apiClosedEndpoint(t))).
					wantError(t, http.StatusGatewayTimeout, ditto.CodeConnectionFailed)
			})

			t.Run("put/create-then-modify", func(t *testing.T) {
				conn := apiPushConn("", up) // the id comes from the path
				r := apiCall(t, n, http.MethodPut, apiBase+"/put-1", conn)
				r.wantStatus(t, http.StatusCreated)
				blackbox.WantField(t, blackbox.Decode(t, r.body), "put-1", "id")
				if loc := r.header.Get("Location"); loc != apiBase+"/put-1" {
					t.Errorf("Location = %q", loc)
				}
				conn["name"] = "renamed"
				conn["id"] = "put-1"
				r = apiCall(t, n, http.MethodPut, apiBase+"/put-1", conn)
				r.wantStatus(t, http.StatusNoContent)
				r.wantEmpty(t)
				got := apiCall(t, n, http.MethodGet, apiBase+"/put-1", nil)
				blackbox.WantField(t, blackbox.Decode(t, got.body), "renamed", "name")
			})

			t.Run("put/id-mismatch", func(t *testing.T) {
				apiCall(t, n, http.MethodPut, apiBase+"/put-2", apiPushConn("other", up)).
					wantError(t, http.StatusBadRequest, ditto.CodeIDNotSettable)
			})

			t.Run("put/invalid-id", func(t *testing.T) {
				apiCall(t, n, http.MethodPut, apiBase+"/bad%20id", apiPushConn("", up)).
					wantError(t, http.StatusBadRequest, ditto.CodeConnectionIDInvalid)
			})

			t.Run("put/if-none-match", func(t *testing.T) {
				apiCall(t, n, http.MethodPut, apiBase+"/put-3", apiPushConn("", up), "If-None-Match", "*").
					wantStatus(t, http.StatusCreated)
				apiCall(t, n, http.MethodPut, apiBase+"/put-3", apiPushConn("", up), "If-None-Match", "*").
					wantError(t, http.StatusPreconditionFailed, ditto.CodePreconditionFailed)
			})

			t.Run("get", func(t *testing.T) {
				apiCall(t, n, http.MethodPut, apiBase+"/get-1", apiPushConn("", up)).wantStatus(t, http.StatusCreated)
				r := apiCall(t, n, http.MethodGet, apiBase+"/get-1", nil)
				r.wantStatus(t, http.StatusOK)
				m := blackbox.Decode(t, r.body)
				blackbox.WantField(t, m, "get-1", "id")
				blackbox.WantField(t, m, nil, "_revision")
				if _, has := m["type"]; has {
					t.Errorf("connection wrapped in a response: %s", r.body)
				}
				r = apiCall(t, n, http.MethodGet, apiBase+"/get-1?fields=id,_revision", nil)
				r.wantStatus(t, http.StatusOK)
				blackbox.WantField(t, blackbox.Decode(t, r.body), map[string]any{"id": "get-1", "_revision": 1})
			})

			t.Run("get/not-found", func(t *testing.T) {
				apiCall(t, n, http.MethodGet, apiBase+"/never-made", nil).wantError(t, http.StatusNotFound, ditto.CodeConnectionNotFound)
			})

			t.Run("get/invalid-id", func(t *testing.T) {
				apiCall(t, n, http.MethodGet, apiBase+"/"+strings.Repeat("x", 101), nil).
					wantError(t, http.StatusBadRequest, ditto.CodeConnectionIDInvalid)
			})

			t.Run("delete", func(t *testing.T) {
				apiCall(t, n, http.MethodPut, apiBase+"/del-1", apiPushConn("", up)).wantStatus(t, http.StatusCreated)
				r := apiCall(t, n, http.MethodDelete, apiBase+"/del-1", nil)
				r.wantStatus(t, http.StatusNoContent)
				r.wantEmpty(t)
				apiCall(t, n, http.MethodGet, apiBase+"/del-1", nil).wantError(t, http.StatusNotFound, ditto.CodeConnectionNotFound)
				apiCall(t, n, http.MethodDelete, apiBase+"/del-1", nil).wantError(t, http.StatusNotFound, ditto.CodeConnectionNotFound)
			})

			t.Run("command", func(t *testing.T) {
				apiCall(t, n, http.MethodPut, apiBase+"/cmd-1", apiPushConn("", up)).wantStatus(t, http.StatusCreated)
				for _, c := range []string{ditto.OpenConnection, ditto.ResetConnectionMetrics, ditto.EnableConnectionLogs,
					ditto.ResetConnectionLogs, ditto.CloseConnection} {
					r := apiCall(t, n, http.MethodPost, apiBase+"/cmd-1/command", c+"\n")
					r.wantStatus(t, http.StatusOK)
					r.wantEmpty(t)
				}
				got := blackbox.Decode(t, apiCall(t, n, http.MethodGet, apiBase+"/cmd-1", nil).body)
				blackbox.WantField(t, got, "closed", "connectionStatus")
			})

			t.Run("command/invalid", func(t *testing.T) {
				r := apiCall(t, n, http.MethodPost, apiBase+"/cmd-1/command", "connectivity.commands:explode")
				r.wantError(t, http.StatusBadRequest, ditto.CodeCommandInvalid)
				blackbox.WantField(t, blackbox.Decode(t, r.body), "The command <connectivity.commands:explode> is invalid or unknown.", "message")
			})

			t.Run("command/not-found", func(t *testing.T) {
				apiCall(t, n, http.MethodPost, apiBase+"/never-made/command", ditto.OpenConnection).
					wantError(t, http.StatusNotFound, ditto.CodeConnectionNotFound)
			})

			t.Run("status", func(t *testing.T) {
				apiCall(t, n, http.MethodPut, apiBase+"/st-1", apiPushConn("", up)).wantStatus(t, http.StatusCreated)
				r := apiCall(t, n, http.MethodGet, apiBase+"/st-1/status", nil)
				r.wantStatus(t, http.StatusOK)
				m := blackbox.Decode(t, r.body)
				blackbox.WantField(t, m, "connectivity.responses:retrieveConnectionStatus", "type")
				blackbox.WantField(t, m, 200, "status")
				blackbox.WantField(t, m, "st-1", "connectionId")
				blackbox.WantField(t, m, "closed", "liveStatus")
			})

			t.Run("metrics", func(t *testing.T) {
				r := apiCall(t, n, http.MethodGet, apiBase+"/st-1/metrics", nil)
				r.wantStatus(t, http.StatusOK)
				m := blackbox.Decode(t, r.body)
				blackbox.WantField(t, m, "connectivity.responses:retrieveConnectionMetrics", "type")
				blackbox.WantField(t, m, "st-1", "connectionId")
				blackbox.WantField(t, m, false, "containsFailures")
			})

			t.Run("logs", func(t *testing.T) {
				r := apiCall(t, n, http.MethodGet, apiBase+"/st-1/logs", nil)
				r.wantStatus(t, http.StatusOK)
				var m map[string]json.RawMessage
				if err := json.Unmarshal(r.body, &m); err != nil {
					t.Fatalf("logs: %v: %s", err, r.body)
				}
				if len(m) != 4 || m["connectionId"] == nil || m["connectionLogs"] == nil || m["enabledSince"] == nil || m["enabledUntil"] == nil {
					t.Errorf("logs body = %s, want exactly connectionId, connectionLogs, enabledSince, enabledUntil", r.body)
				}
			})

			t.Run("status/not-found", func(t *testing.T) {
				for _, sub := range []string{"status", "metrics", "logs"} {
					apiCall(t, n, http.MethodGet, apiBase+"/never-made/"+sub, nil).
						wantError(t, http.StatusNotFound, ditto.CodeConnectionNotFound)
				}
			})

			t.Run("timeout/invalid", func(t *testing.T) {
				apiCall(t, n, http.MethodGet, apiBase+"/st-1?timeout=70s", nil).
					wantError(t, http.StatusBadRequest, ditto.CodeTimeoutInvalid)
			})

			t.Run("method-not-allowed", func(t *testing.T) {
				apiCall(t, n, http.MethodPatch, apiBase+"/st-1", nil).wantStatus(t, http.StatusMethodNotAllowed)
			})

			t.Run("list", func(t *testing.T) {
				r := apiCall(t, n, http.MethodGet, apiBase, nil)
				r.wantStatus(t, http.StatusOK)
				var conns []map[string]any
				if err := json.Unmarshal(r.body, &conns); err != nil {
					t.Fatalf("list: %v: %s", err, r.body)
				}
				var ids []string
				for _, c := range conns {
					ids = append(ids, c["id"].(string))
				}
				var idsOnly []string
				if err := json.Unmarshal(apiCall(t, n, http.MethodGet, apiBase+"?ids-only=true", nil).body, &idsOnly); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(ids) != fmt.Sprint(idsOnly) || len(ids) < 5 {
					t.Errorf("list ids %v, ids-only %v", ids, idsOnly)
				}
				var viaFields []string
				if err := json.Unmarshal(apiCall(t, n, http.MethodGet, apiBase+"?fields=id", nil).body, &viaFields); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(viaFields) != fmt.Sprint(idsOnly) {
					t.Errorf("fields=id gave %v", viaFields)
				}
				var selected []map[string]any
				if err := json.Unmarshal(apiCall(t, n, http.MethodGet, apiBase+"?fields=id,connectionType", nil).body, &selected); err != nil {
					t.Fatal(err)
				}
				if len(selected) != len(ids) || len(selected[0]) != 2 || selected[0]["connectionType"] != "http-push" {
					t.Errorf("fields=id,connectionType gave %v", selected)
				}
			})

			t.Run("list/paging", func(t *testing.T) {
				var all []string
				_ = json.Unmarshal(apiCall(t, n, http.MethodGet, apiBase+"?ids-only=true", nil).body, &all)
				var paged []string
				cursor := ""
				for pages := 0; ; pages++ {
					if pages > len(all) {
						t.Fatal("paging does not end")
					}
					opt := "size(2)"
					if cursor != "" {
						opt += ",cursor(" + cursor + ")"
					}
					r := apiCall(t, n, http.MethodGet, apiBase+"?option="+opt, nil)
					r.wantStatus(t, http.StatusOK)
					var page struct {
						Items  []map[string]any `json:"items"`
						Cursor string           `json:"cursor"`
					}
					if err := json.Unmarshal(r.body, &page); err != nil {
						t.Fatalf("page: %v: %s", err, r.body)
					}
					if len(page.Items) > 2 {
						t.Fatalf("page of %d items", len(page.Items))
					}
					for _, c := range page.Items {
						paged = append(paged, c["id"].(string))
					}
					if page.Cursor == "" {
						break
					}
					cursor = page.Cursor
				}
				if fmt.Sprint(paged) != fmt.Sprint(all) {
					t.Errorf("pages gave %v, want %v", paged, all)
				}
			})

			t.Run("list/bad-option", func(t *testing.T) {
				for _, opt := range []string{"size(0)", "size(201)", "limit(0,2)", "cursor(%21%21)", "size(2"} {
					apiCall(t, n, http.MethodGet, apiBase+"?option="+opt, nil).
						wantError(t, http.StatusBadRequest, ditto.CodeOptionInvalid)
				}
			})
		})
	}
}

// TestAPIListLimit: above 100 connections Ditto's answer stays a 400 unless
// ids-only or paging is asked for.
func TestAPIListLimit(t *testing.T) {
	for _, eng := range blackbox.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			n := kit.Start(t, eng.Open(t)(), kit.Options{})
			for i := 0; i < 101; i++ {
				c := apiPushConn(fmt.Sprintf("many-%03d", i), "http://127.0.0.1:9")
				r := n.Send(t, blackbox.Shard, map[string]string{}, blackbox.Cmd(ditto.CreateConnection, "connection", c))
				if r == nil || r.Status != http.StatusCreated {
					t.Fatalf("create %d: %v", i, r)
				}
			}
			r := apiCall(t, n, http.MethodGet, apiBase, nil)
			r.wantError(t, http.StatusBadRequest, ditto.CodeConnectionsAmount)
			// Ditto's ConnectionsAmountIllegalException words it so since its
			// July 2024 fix ("exceptions" before).
			if m := blackbox.Decode(t, r.body); m["message"] != "The amount of requested connections exceeds the limit of '100'." {
				t.Fatalf("message = %v", m["message"])
			}

			var ids []string
			r = apiCall(t, n, http.MethodGet, apiBase+"?ids-only=true", nil)
			r.wantStatus(t, http.StatusOK)
			if err := json.Unmarshal(r.body, &ids); err != nil || len(ids) != 101 {
				t.Fatalf("ids-only: %d ids, %v", len(ids), err)
			}

			var page struct {
				Items  []map[string]any `json:"items"`
				Cursor string           `json:"cursor"`
			}
			r = apiCall(t, n, http.MethodGet, apiBase+"?option=size(200)", nil)
			r.wantStatus(t, http.StatusOK)
			if err := json.Unmarshal(r.body, &page); err != nil || len(page.Items) != 101 || page.Cursor != "" {
				t.Fatalf("one page of 200: %d items, cursor %q, %v", len(page.Items), page.Cursor, err)
			}
			r = apiCall(t, n, http.MethodGet, apiBase+"?option=size(100)", nil)
			page.Items, page.Cursor = nil, ""
			if err := json.Unmarshal(r.body, &page); err != nil || len(page.Items) != 100 || page.Cursor == "" {
				t.Fatalf("first page of 100: %d items, cursor %q, %v", len(page.Items), page.Cursor, err)
			}
			r = apiCall(t, n, http.MethodGet, apiBase+"?option=cursor("+page.Cursor+")", nil)
			page.Items, page.Cursor = nil, ""
			if err := json.Unmarshal(r.body, &page); err != nil || len(page.Items) != 1 || page.Items[0]["id"] != "many-100" {
				t.Fatalf("last page: %s", r.body)
			}
		})
	}
}

// TestPiggybackIDsSingletonAlias: the Explorer UI's Ditto 2 mode lists ids
// through /user/connectivityRoot/connectionIdsRetrieval/singleton.
func TestPiggybackIDsSingletonAlias(t *testing.T) {
	for _, eng := range blackbox.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			n := kit.Start(t, eng.Open(t)(), kit.Options{})
			apiCall(t, n, http.MethodPut, apiBase+"/alias-1", apiPushConn("", "http://127.0.0.1:9")).wantStatus(t, http.StatusCreated)
			st, body := n.Piggyback(t, kit.Envelope(blackbox.IDsPath+"/singleton",
				blackbox.Cmd(ditto.RetrieveAllConnectionIDs), nil))
			if st != http.StatusOK {
				t.Fatalf("HTTP %d: %s", st, body)
			}
			m := blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.responses:retrieveAllConnectionIds", "type")
			blackbox.WantField(t, m, []string{"alias-1"}, "connectionIds")
		})
	}
}
