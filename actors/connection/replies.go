package connection

import (
	"encoding/json"
	"strconv"

	"github.com/dittoconn/dittoconn/internal/ojson"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

func reply(status int, payload []byte, rev int64) *pb.Reply {
	r := &pb.Reply{Kind: pb.Reply_RESPONSE, Status: int32(status), Payload: payload}
	if rev > 0 {
		r.Headers = map[string]string{ditto.HeaderEntityRevision: strconv.FormatInt(rev, 10)}
	}
	return r
}

// respond is the answer body with status, at revision rev. The buffer is
// sized for the top-level literals (a retrieved connection is most of its
// answer), so writing it does not grow it again and again.
func respond(status int, body *ojson.Object, rev int64) *pb.Reply {
	n := 16
	for _, k := range body.Keys() {
		n += len(k) + 4
		if r, ok := body.Value(k).(json.RawMessage); ok {
			n += len(r)
		}
	}
	return reply(status, ojson.GoJSON.AppendValue(make([]byte, 0, n), body), rev)
}

func errorReply(err *ditto.Error, rev int64) *pb.Reply {
	return reply(err.Status, err.JSON(), rev)
}

// parseErrorReply is for a command whose JSON could not be read: the gateway
// wraps it as devops.responses:errorResponse, as Ditto does.
func parseErrorReply(err *ditto.Error) *pb.Reply {
	return &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Status: int32(err.Status), Payload: err.JSON()}
}

// The answers' bodies are ordered objects, fields set in Ditto's order.
// Strings are escaped as encoding/json did when these answers were first
// written (U+2028 and U+2029 as \u escapes), which keeps their bytes.

// answer starts every response: the response type of the command, the
// status; room for fields more.
func answer(cmdType string, status int, fields int) *ojson.Object {
	o := ojson.NewObjectSize(2 + fields)
	o.Set("type", str(ditto.ResponseType(cmdType)))
	o.Set("status", num(int64(status)))
	return o
}

// withID is answer plus "connectionId", room for fields more.
func withID(cmdType string, status int, id string, fields int) *ojson.Object {
	o := answer(cmdType, status, 1+fields)
	o.Set("connectionId", str(id))
	return o
}

// str, num, boolean and raw are the literals the bodies hold; raw embeds
// already encoded JSON, empty is null.
func str(s string) json.RawMessage   { return ojson.GoJSON.Quote(s) }
func num(n int64) json.RawMessage    { return strconv.AppendInt(nil, n, 10) }
func raw(b []byte) json.RawMessage   { return b }
func boolean(b bool) json.RawMessage { return strconv.AppendBool(nil, b) }

func connectionAnswer(cmdType string, status int, connJSON []byte) *ojson.Object {
	o := answer(cmdType, status, 1)
	o.Set("connection", raw(connJSON))
	return o
}

func testAnswer(cmdType string, status int, id, result string) *ojson.Object {
	o := withID(cmdType, status, id, 1)
	o.Set("testResult", str(result))
	return o
}
