package protocol

import (
	"strings"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Groups of a topic path.
const (
	GroupThings      = "things"
	GroupPolicies    = "policies"
	GroupConnections = "connections"
)

// Channels. Policies and connections have none; ChannelNone is what the
// topic:channel placeholder resolves to for them.
const (
	ChannelTwin = "twin"
	ChannelLive = "live"
	ChannelNone = "none"
)

// Criteria.
const (
	CriterionCommands      = "commands"
	CriterionEvents        = "events"
	CriterionMessages      = "messages"
	CriterionAnnouncements = "announcements"
	CriterionErrors        = "errors"
	CriterionAcks          = "acks"
	CriterionSearch        = "search"
	CriterionStreaming     = "streaming"
)

// Placeholder is the "_" that stands for an absent namespace or entity name.
const Placeholder = "_"

// CodeUnknownTopicPath is UnknownTopicPathException's error code.
const CodeUnknownTopicPath = "things.protocol.adapter:unknown.topicpath"

var commandActions = set("create", "retrieve", "modify", "merge", "delete")
var eventActions = set("created", "modified", "merged", "deleted")
var searchActions = set("subscribe", "request", "cancel", "created", "next", "complete", "failed",
	"hasNext", "error")

func set(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, x := range s {
		m[x] = true
	}
	return m
}

// Topic is a parsed Ditto Protocol topic path
// <namespace>/<entityName>/<group>/<channel>/<criterion>/<action-or-subject>.
type Topic struct {
	Namespace  string // "_" when absent
	EntityName string // "_" when absent
	Group      string
	Channel    string // ChannelNone for policies and connections
	Criterion  string
	Action     string // commands, events, search, streaming, announcements, acks (label)
	Subject    string // messages; may contain '/'
}

// TopicError is UnknownTopicPathException (400).
func TopicError(topic string) *ditto.Error {
	return ditto.New(400, CodeUnknownTopicPath, "The topic path '"+topic+"' is not supported.",
		"Check if the topic path is correct.")
}

// ParseTopic parses a topic path strictly: known group, channel and
// criterion, the action set of the criterion, no extra segments.
func ParseTopic(s string) (Topic, error) {
	parts := strings.Split(s, "/")
	bad := func() (Topic, error) { return Topic{}, TopicError(s) }
	if len(parts) < 4 || parts[0] == "" || parts[1] == "" {
		return bad()
	}
	t := Topic{Namespace: parts[0], EntityName: parts[1], Group: parts[2]}
	rest := parts[3:]
	switch t.Group {
	case GroupThings:
		if rest[0] != ChannelTwin && rest[0] != ChannelLive {
			return bad()
		}
		t.Channel, rest = rest[0], rest[1:]
	case GroupPolicies, GroupConnections:
		t.Channel = ChannelNone
	default:
		return bad()
	}
	if len(rest) == 0 {
		return bad()
	}
	t.Criterion, rest = rest[0], rest[1:]
	one := func(ok func(string) bool) (Topic, error) {
		if len(rest) != 1 || !ok(rest[0]) {
			return bad()
		}
		t.Action = rest[0]
		return t, nil
	}
	nonEmpty := func(a string) bool { return a != "" }
	switch t.Criterion {
	case CriterionCommands:
		if t.Group == GroupConnections {
			return bad()
		}
		return one(func(a string) bool { return commandActions[a] })
	case CriterionEvents:
		if t.Group == GroupConnections {
			return bad()
		}
		return one(func(a string) bool { return eventActions[a] })
	case CriterionMessages:
		if t.Group != GroupThings || t.Channel != ChannelLive || len(rest) == 0 {
			return bad()
		}
		t.Subject = strings.Join(rest, "/")
		if t.Subject == "" {
			return bad()
		}
		return t, nil
	case CriterionAnnouncements:
		if t.Group == GroupThings {
			return bad()
		}
		return one(nonEmpty)
	case CriterionErrors:
		if len(rest) != 0 {
			return bad()
		}
		return t, nil
	case CriterionAcks:
		if t.Group != GroupThings {
			return bad()
		}
		if len(rest) == 0 {
			return t, nil
		}
		return one(nonEmpty)
	case CriterionSearch:
		if t.Group != GroupThings || t.Channel != ChannelTwin {
			return bad()
		}
		return one(func(a string) bool { return searchActions[a] })
	case CriterionStreaming:
		if t.Group != GroupThings || t.Channel != ChannelTwin {
			return bad()
		}
		return one(nonEmpty)
	}
	return bad()
}

// String builds the topic path.
func (t Topic) String() string {
	var b strings.Builder
	b.Grow(len(t.Namespace) + len(t.EntityName) + len(t.Action) + len(t.Subject) + 40)
	b.WriteString(orPlaceholder(t.Namespace))
	b.WriteByte('/')
	b.WriteString(orPlaceholder(t.EntityName))
	b.WriteByte('/')
	b.WriteString(t.Group)
	if t.Channel != "" && t.Channel != ChannelNone {
		b.WriteByte('/')
		b.WriteString(t.Channel)
	}
	b.WriteByte('/')
	b.WriteString(t.Criterion)
	if s := t.ActionOrSubject(); s != "" {
		b.WriteByte('/')
		b.WriteString(s)
	}
	return b.String()
}

func orPlaceholder(s string) string {
	if s == "" {
		return Placeholder
	}
	return s
}

// ActionOrSubject is the last segment(s): the subject for messages, else the action.
func (t Topic) ActionOrSubject() string {
	if t.Criterion == CriterionMessages {
		return t.Subject
	}
	return t.Action
}

// EntityID is the id of the addressed entity: "namespace:name" for things and
// policies (a "_" namespace becomes empty), the name for connections, "" when
// the name is "_".
func (t Topic) EntityID() string {
	if t.EntityName == "" || t.EntityName == Placeholder {
		return ""
	}
	if t.Group == GroupConnections {
		return t.EntityName
	}
	ns := t.Namespace
	if ns == Placeholder {
		ns = ""
	}
	return ns + ":" + t.EntityName
}

// Stream is the target topic (model.Topic*) a message with this topic is
// published under, or "" when no target can subscribe to it. Responses
// (isResponse) to live commands and messages go back to their sender, not to
// subscribers.
func (t Topic) Stream(isResponse bool) string {
	switch t.Group {
	case GroupThings:
		switch {
		case t.Channel == ChannelTwin && t.Criterion == CriterionEvents:
			return model.TopicTwinEvents
		case t.Channel == ChannelLive && t.Criterion == CriterionEvents:
			return model.TopicLiveEvents
		case t.Channel == ChannelLive && t.Criterion == CriterionMessages && !isResponse:
			return model.TopicLiveMessages
		case t.Channel == ChannelLive && t.Criterion == CriterionCommands && !isResponse:
			return model.TopicLiveCommands
		}
	case GroupPolicies:
		if t.Criterion == CriterionAnnouncements {
			return model.TopicPolicyAnnouncements
		}
	case GroupConnections:
		if t.Criterion == CriterionAnnouncements {
			return model.TopicConnectionAnnouncements
		}
	}
	return ""
}

// Classify parses m's topic and returns the target topic it is published
// under ("" when none). A status marks commands and messages as responses.
func Classify(m *Message) (Topic, string, error) {
	t, err := ParseTopic(m.Topic)
	if err != nil {
		return Topic{}, "", err
	}
	return t, t.Stream(m.Status != 0), nil
}
