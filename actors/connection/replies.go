package connection

import (
	"strconv"

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

func errorReply(err *ditto.Error, rev int64) *pb.Reply {
	return reply(err.Status, err.JSON(), rev)
}

// parseErrorReply is for a command whose JSON could not be read: the gateway
// wraps it as devops.responses:errorResponse, as Ditto does.
func parseErrorReply(err *ditto.Error) *pb.Reply {
	return &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Status: int32(err.Status), Payload: err.JSON()}
}

// response starts a response object: type, status.
func response(cmdType string, status int) *obj {
	return newObj().set("type", ditto.ResponseType(cmdType)).set("status", status)
}
