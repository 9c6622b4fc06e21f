package connections

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dittoconn/dittoconn/gateway/internal/httpbody"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// commands are the texts POST /api/2/connections/{id}/command accepts.
var commands = map[string]bool{
	ditto.OpenConnection:         true,
	ditto.CloseConnection:        true,
	ditto.ResetConnectionMetrics: true,
	ditto.EnableConnectionLogs:   true,
	ditto.ResetConnectionLogs:    true,
}

// create serves POST /api/2/connections: createConnection with a generated
// id, or with ?dry-run=true a testConnection that persists nothing.
func (a *API) create(c echo.Context) error {
	dryRun := strings.EqualFold(c.QueryParam("dry-run"), "true")
	timeout := defaultTimeout
	if dryRun {
		timeout = dryRunTimeout
	}
	r, derr := a.begin(c, timeout)
	if derr != nil {
		return writeError(c, derr)
	}
	if derr := requireMediaType(c, jsonMediaTypes); derr != nil {
		return writeError(c, derr)
	}
	body, fields, derr := a.readObject(c)
	if derr != nil {
		return writeError(c, derr)
	}
	if _, has := fields["id"]; has && !dryRun {
		return writeError(c, ditto.IDNotSettable())
	}
	id := uuid.NewString()
	if dryRun {
		id += "-dry-run"
		delete(fields, "id")
		body = object(flatten(fields)...) // drop the body's id; order does not matter to a test
	}
	conn := withFields(body, "id", id)
	if _, has := fields["connectionStatus"]; !has {
		conn = withFields(conn, "connectionStatus", "unknown")
	}

	ctx, cancel := context.WithTimeout(c.Request().Context(), r.timeout)
	defer cancel()
	if dryRun {
		o := a.send(ctx, r, ditto.PathConnectionShard, ditto.TestConnection, "connection", json.RawMessage(conn))
		if o.err != nil {
			return fail(c, o)
		}
		return c.NoContent(http.StatusOK)
	}
	o := a.send(ctx, r, ditto.PathConnectionShard, ditto.CreateConnection, "connection", json.RawMessage(conn))
	if o.err != nil {
		return fail(c, o)
	}
	return a.created(c, id, o)
}

// created answers 201 with the connection and its Location.
func (a *API) created(c echo.Context, id string, o outcome) error {
	path := strings.TrimSuffix(c.Request().URL.Path, "/")
	if c.Param("id") == "" {
		path += "/" + id
	}
	c.Response().Header().Set(echo.HeaderLocation, path)
	return c.JSONBlob(http.StatusCreated, field(o.body, "connection"))
}

// put serves PUT /api/2/connections/{id}: modifyConnection, which creates
// an unknown id (201) and replaces a known one (204). If-None-Match: *
// makes it create-only.
func (a *API) put(c echo.Context) error {
	r, derr := a.begin(c, defaultTimeout)
	if derr != nil {
		return writeError(c, derr)
	}
	id, derr := pathID(c)
	if derr != nil {
		return writeError(c, derr)
	}
	if derr := requireMediaType(c, jsonMediaTypes); derr != nil {
		return writeError(c, derr)
	}
	body, fields, derr := a.readObject(c)
	if derr != nil {
		return writeError(c, derr)
	}
	conn := body
	if raw, has := fields["id"]; has {
		var bodyID string
		if json.Unmarshal(raw, &bodyID) != nil || bodyID != id {
			return writeError(c, ditto.IDNotSettable())
		}
	} else {
		conn = withFields(body, "id", id)
	}
	createOnly := strings.TrimSpace(c.Request().Header.Get("If-None-Match")) == "*"

	ctx, cancel := context.WithTimeout(c.Request().Context(), r.timeout)
	defer cancel()
	if createOnly {
		// createConnection refuses an existing id in the grain itself, so the
		// check and the write cannot race.
		o := a.send(ctx, r, ditto.PathConnectionShard, ditto.CreateConnection, "connection", json.RawMessage(conn))
		if o.err != nil {
			if o.err.Code == ditto.CodeConnectionConflict {
				return writeError(c, ditto.PreconditionFailed("if-none-match", "*", etag(o.headers)))
			}
			return fail(c, o)
		}
		return a.created(c, id, o)
	}
	o := a.send(ctx, r, ditto.PathConnectionShard, ditto.ModifyConnection, "connection", json.RawMessage(conn))
	if o.err != nil {
		return fail(c, o)
	}
	if o.status == http.StatusCreated {
		return a.created(c, id, o)
	}
	return c.NoContent(http.StatusNoContent)
}

// etag is Ditto's entity tag of a connection revision.
func etag(headers map[string]string) string {
	return `"rev:` + headers[ditto.HeaderEntityRevision] + `"`
}

// retrieve serves GET /api/2/connections/{id}[?fields=…].
func (a *API) retrieve(c echo.Context) error {
	r, derr := a.begin(c, defaultTimeout)
	if derr != nil {
		return writeError(c, derr)
	}
	id, derr := pathID(c)
	if derr != nil {
		return writeError(c, derr)
	}
	fields := []any{"connectionId", id}
	if sel := c.QueryParam("fields"); sel != "" {
		fields = append(fields, "selectedFields", sel)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), r.timeout)
	defer cancel()
	o := a.send(ctx, r, ditto.PathConnectionShard, ditto.RetrieveConnection, fields...)
	if o.err != nil {
		return fail(c, o)
	}
	return c.JSONBlob(http.StatusOK, field(o.body, "connection"))
}

// delete serves DELETE /api/2/connections/{id}.
func (a *API) delete(c echo.Context) error {
	o, err := a.simple(c, ditto.DeleteConnection)
	if err != nil || o.err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// command serves POST /api/2/connections/{id}/command with a text body
// naming the command ("connectivity.commands:openConnection").
func (a *API) command(c echo.Context) error {
	r, derr := a.begin(c, defaultTimeout)
	if derr != nil {
		return writeError(c, derr)
	}
	id, derr := pathID(c)
	if derr != nil {
		return writeError(c, derr)
	}
	if derr := requireMediaType(c, textMediaTypes); derr != nil {
		return writeError(c, derr)
	}
	body, derr := httpbody.Read(c, a.cfg.BodyLimit, a.log)
	if derr != nil {
		return writeError(c, derr)
	}
	text := strings.TrimSpace(string(body))
	if !commands[text] {
		return writeError(c, ditto.CommandInvalid(text))
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), r.timeout)
	defer cancel()
	o := a.send(ctx, r, ditto.PathConnectionShard, text, "connectionId", id)
	if o.err != nil {
		return fail(c, o)
	}
	return c.NoContent(http.StatusOK)
}

// status serves GET /api/2/connections/{id}/status: the response as the
// command returns it, type and status included.
func (a *API) status(c echo.Context) error {
	o, err := a.simple(c, ditto.RetrieveConnectionStatus)
	if err != nil || o.err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, o.body)
}

// metrics serves GET /api/2/connections/{id}/metrics, like status.
func (a *API) metrics(c echo.Context) error {
	o, err := a.simple(c, ditto.RetrieveConnectionMetrics)
	if err != nil || o.err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, o.body)
}

// logs serves GET /api/2/connections/{id}/logs: the logs without the
// response's type and status.
func (a *API) logs(c echo.Context) error {
	o, err := a.simple(c, ditto.RetrieveConnectionLogs)
	if err != nil || o.err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(o.body, &m) != nil {
		return writeError(c, ditto.InternalError("The connectivity service sent a malformed response."))
	}
	kv := make([]any, 0, 8)
	for _, name := range []string{"connectionId", "connectionLogs", "enabledSince", "enabledUntil"} {
		v, ok := m[name]
		if !ok {
			v = json.RawMessage("null")
		}
		kv = append(kv, name, v)
	}
	return c.JSONBlob(http.StatusOK, object(kv...))
}

// simple runs a command that carries only connectionId. When the command
// failed, the error has been written and o.err is set.
func (a *API) simple(c echo.Context, cmdType string) (outcome, error) {
	r, derr := a.begin(c, defaultTimeout)
	if derr != nil {
		return outcome{err: derr}, writeError(c, derr)
	}
	id, derr := pathID(c)
	if derr != nil {
		return outcome{err: derr}, writeError(c, derr)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), r.timeout)
	defer cancel()
	o := a.send(ctx, r, ditto.PathConnectionShard, cmdType, "connectionId", id)
	if o.err != nil {
		return o, fail(c, o)
	}
	return o, nil
}

// flatten turns members into name/value pairs for object.
func flatten(m map[string]json.RawMessage) []any {
	kv := make([]any, 0, 2*len(m))
	for k, v := range m {
		kv = append(kv, k, v)
	}
	return kv
}
