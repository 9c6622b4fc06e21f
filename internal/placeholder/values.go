package placeholder

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Values is the standard Resolver for one message on a connection. Zero
// fields are unavailable, so their placeholders stay unresolved. It also
// implements rql.Resolver (same Lookup) and template.Clock.
type Values struct {
	// Headers are looked up case-insensitively: inbound, the external
	// message's headers; outbound, the Ditto Protocol headers.
	Headers map[string]string
	// Topic of the signal (thing:, policy:, entity:, topic:, resource:type).
	Topic *protocol.Topic
	// Path is the Ditto Protocol path (resource:path, feature:id); "" = "/".
	Path string
	// Thing is the thing JSON for thing-json: (see protocol.ThingDoc).
	Thing map[string]any
	// ConnectionID for connection:id.
	ConnectionID string
	// SubjectID for request:subjectId (the first authorization subject).
	SubjectID string
	// SourceAddress for source:address (inbound enforcement).
	SourceAddress string
	// Time fixes time:now; zero means the wall clock.
	Time time.Time
}

// ForMessage fills Values from a Ditto Protocol message; a topic that does
// not parse leaves the topic-based placeholders unresolved.
func ForMessage(m *protocol.Message, connectionID string) *Values {
	v := &Values{Headers: m.Headers, Path: m.Path, ConnectionID: connectionID}
	if t, err := protocol.ParseTopic(m.Topic); err == nil {
		v.Topic = &t
	}
	return v
}

// Now implements template.Clock.
func (v *Values) Now() time.Time {
	if v == nil || v.Time.IsZero() {
		return time.Now()
	}
	return v.Time
}

// Lookup implements Resolver.
func (v *Values) Lookup(prefix, name string) (string, bool) {
	if v == nil {
		return "", false
	}
	switch prefix {
	case "header":
		return v.header(name)
	case "connection":
		return v.ConnectionID, name == "id" && v.ConnectionID != ""
	case "request":
		return v.SubjectID, name == "subjectId" && v.SubjectID != ""
	case "source":
		return v.SourceAddress, name == "address" && v.SourceAddress != ""
	case "time":
		return template.ResolveTime(name, v)
	case "thing-json":
		return v.thingJSON(name)
	}
	if v.Topic == nil {
		return "", false
	}
	t := v.Topic
	switch prefix {
	case "thing":
		if t.Group != protocol.GroupThings {
			return "", false
		}
		return idPart(t, name)
	case "policy":
		if t.Group != protocol.GroupPolicies {
			return "", false
		}
		return idPart(t, name)
	case "entity":
		if t.Group != protocol.GroupThings && t.Group != protocol.GroupPolicies {
			return "", false
		}
		return idPart(t, name)
	case "feature":
		return protocol.FeatureID(*t, v.Path)
	case "topic":
		return topicPart(t, name)
	case "resource":
		switch name {
		case "type":
			s := protocol.ResourceType(*t)
			return s, s != ""
		case "path":
			if v.Path == "" {
				return "/", true
			}
			return v.Path, true
		}
	}
	return "", false
}

func (v *Values) header(name string) (string, bool) {
	if s, ok := v.Headers[name]; ok {
		return s, true
	}
	for k, s := range v.Headers {
		if strings.EqualFold(k, name) {
			return s, true
		}
	}
	return "", false
}

func (v *Values) thingJSON(pointer string) (string, bool) {
	if v.Thing == nil {
		return "", false
	}
	var cur any = v.Thing
	for _, seg := range protocol.PathSegments(pointer) {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		if cur, ok = m[seg]; !ok {
			return "", false
		}
	}
	if s, ok := cur.(string); ok {
		return s, true
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// idPart resolves id, namespace and name of the topic's entity; a "_"
// namespace or name counts as absent.
func idPart(t *protocol.Topic, name string) (string, bool) {
	ns, n := t.Namespace, t.EntityName
	if n == "" || n == protocol.Placeholder {
		return "", false
	}
	if ns == protocol.Placeholder {
		ns = ""
	}
	switch name {
	case "id":
		return ns + ":" + n, true
	case "namespace":
		return ns, true
	case "name":
		return n, true
	}
	return "", false
}

func topicPart(t *protocol.Topic, name string) (string, bool) {
	switch name {
	case "full":
		return t.String(), true
	case "namespace":
		return t.Namespace, true
	case "entityName", "entity-name":
		return t.EntityName, true
	case "group":
		return t.Group, true
	case "channel":
		return t.Channel, true
	case "criterion":
		return t.Criterion, true
	case "action":
		return t.Action, t.Action != "" && t.Criterion != protocol.CriterionMessages
	case "subject":
		return t.Subject, t.Subject != ""
	case "action-subject":
		s := t.ActionOrSubject()
		return s, s != ""
	}
	return "", false
}
