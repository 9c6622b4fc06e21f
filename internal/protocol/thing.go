package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// PathSegments splits a message path ("/features/f/properties/x") into its
// segments; "/" and "" give none.
func PathSegments(path string) []string {
	p := strings.Trim(path, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// FeatureID returns the feature a things message addresses (path
// /features/<id>/...), as the feature:id placeholder does.
func FeatureID(t Topic, path string) (string, bool) {
	if t.Group != GroupThings {
		return "", false
	}
	segs := PathSegments(path)
	if len(segs) >= 2 && segs[0] == "features" && segs[1] != "" {
		return segs[1], true
	}
	return "", false
}

// ResourceType is the resource:type placeholder: "thing", "policy",
// "message" or "connection".
func ResourceType(t Topic) string {
	switch t.Group {
	case GroupThings:
		if t.Criterion == CriterionMessages {
			return "message"
		}
		return "thing"
	case GroupPolicies:
		return "policy"
	case GroupConnections:
		return "connection"
	}
	return ""
}

// ThingDoc is the thing JSON a things message implies, the document RQL
// filters are evaluated against (Ditto's ThingEventToThingConverter): the
// value placed at the message path inside {"thingId", "_namespace"} plus
// "_revision" and "_modified" from the envelope. A value at "/" is the whole
// thing. Messages whose topic is not of the things group, or whose value is
// not JSON, give ok=false. Numbers are json.Number.
func ThingDoc(t Topic, m *Message) (doc map[string]any, ok bool) {
	if t.Group != GroupThings {
		return nil, false
	}
	doc = map[string]any{}
	segs := PathSegments(m.Path)
	if len(m.Value) > 0 && t.Criterion != CriterionMessages && !strings.HasSuffix(t.Action, "deleted") {
		dec := json.NewDecoder(bytes.NewReader(m.Value))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		if len(segs) == 0 {
			if obj, isObj := v.(map[string]any); isObj {
				doc = obj
			}
		} else {
			cur := doc
			for _, s := range segs[:len(segs)-1] {
				next, isObj := cur[s].(map[string]any)
				if !isObj {
					next = map[string]any{}
					cur[s] = next
				}
				cur = next
			}
			cur[segs[len(segs)-1]] = v
		}
	}
	if id := t.EntityID(); id != "" {
		doc["thingId"] = id
		ns, _, _ := strings.Cut(id, ":")
		doc["_namespace"] = ns
	}
	if m.Revision != 0 {
		doc["_revision"] = json.Number(strconv.FormatInt(m.Revision, 10))
	}
	if m.Timestamp != "" {
		doc["_modified"] = m.Timestamp
	}
	return doc, true
}

// ErrorTopic is the errors topic for a message that failed: the entity and
// group of t (twin/live kept for things), or _/_/things/twin/errors when t is
// unknown.
func ErrorTopic(t Topic) Topic {
	switch t.Group {
	case GroupThings:
		ch := t.Channel
		if ch != ChannelLive {
			ch = ChannelTwin
		}
		return Topic{Namespace: orPlaceholder(t.Namespace), EntityName: orPlaceholder(t.EntityName),
			Group: GroupThings, Channel: ch, Criterion: CriterionErrors}
	case GroupPolicies:
		return Topic{Namespace: orPlaceholder(t.Namespace), EntityName: orPlaceholder(t.EntityName),
			Group: GroupPolicies, Channel: ChannelNone, Criterion: CriterionErrors}
	}
	return Topic{Namespace: Placeholder, EntityName: Placeholder, Group: GroupThings, Channel: ChannelTwin,
		Criterion: CriterionErrors}
}

// ErrorResponse builds the Ditto Protocol error response to a failed message:
// topic ErrorTopic(t), path "/", the Ditto error JSON as value and its status.
// headers are copied (the caller passes the correlation-id and friends of
// the request) and content-type is set to application/json as Ditto does.
func ErrorResponse(t Topic, headers map[string]string, e *ditto.Error) *Message {
	if e == nil {
		e = ditto.InternalError("")
	}
	h := make(map[string]string, len(headers)+1)
	for k, v := range headers {
		h[k] = v
	}
	h["content-type"] = "application/json"
	return &Message{
		Topic:   ErrorTopic(t).String(),
		Headers: h,
		Path:    "/",
		Value:   e.JSON(),
		Status:  e.Status,
	}
}

// ErrorResponseFor is ErrorResponse for a raw topic string that may not parse.
func ErrorResponseFor(topic string, headers map[string]string, e *ditto.Error) *Message {
	t, _ := ParseTopic(topic)
	if t.Group == "" {
		// a topic too broken for ParseTopic may still name its entity
		parts := strings.SplitN(topic, "/", 4)
		if len(parts) >= 3 && (parts[2] == GroupThings || parts[2] == GroupPolicies) && parts[0] != "" && parts[1] != "" {
			t = Topic{Namespace: parts[0], EntityName: parts[1], Group: parts[2]}
			if len(parts) == 4 && strings.HasPrefix(parts[3], ChannelLive+"/") {
				t.Channel = ChannelLive
			}
		}
	}
	return ErrorResponse(t, headers, e)
}
