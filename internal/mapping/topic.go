package mapping

import (
	"fmt"
	"strings"
)

// topic is a parsed Ditto Protocol topic. internal/protocol will own topic
// parsing; this local copy keeps the package free of a dependency on work in
// progress and can be replaced by it later.
type topic struct {
	Namespace, Name, Group, Channel, Criterion string
	Action                                     string // commands/events action, search/streaming action
	Subject                                    string // messages, acks, announcements
}

var (
	topicGroups     = map[string]bool{"things": true, "policies": true, "connections": true}
	topicChannels   = map[string]bool{"twin": true, "live": true, "none": true}
	topicCriteria   = map[string]bool{"commands": true, "events": true, "search": true, "messages": true, "errors": true, "acks": true, "announcements": true, "streaming": true}
	topicActions    = map[string]bool{"create": true, "retrieve": true, "modify": true, "merge": true, "delete": true, "migrate": true, "created": true, "modified": true, "merged": true, "migrated": true, "deleted": true, "checkPermissions": true}
	searchActions   = map[string]bool{"subscribe": true, "cancel": true, "request": true, "complete": true, "created": true, "failed": true, "hasNext": true, "next": true, "error": true}
	streamingAction = map[string]bool{"subscribeForPersistedEvents": true, "cancel": true, "request": true, "complete": true, "created": true, "failed": true, "next": true, "error": true}
)

// unknownTopic mirrors UnknownTopicPathException's message.
func unknownTopic(s, desc string) error {
	return fmt.Errorf("%w: the topic path <%s> is not supported: %s", ErrMappingFailed, s, desc)
}

// parseTopic parses a topic as Ditto's TopicPathParser does.
func parseTopic(s string) (topic, error) {
	parts := pointerKeys(s)
	if strings.HasPrefix(s, "/") {
		parts = append([]string{""}, parts...)
	}
	var t topic
	next := func(what string) (string, error) {
		if len(parts) == 0 {
			return "", unknownTopic(s, "The topic path has no "+what+" part.")
		}
		p := parts[0]
		parts = parts[1:]
		return p, nil
	}
	var err error
	if t.Namespace, err = next("namespace"); err != nil {
		return t, err
	}
	if t.Name, err = next("entity name"); err != nil {
		return t, err
	}
	if t.Group, err = next("group"); err != nil {
		return t, err
	}
	if !topicGroups[t.Group] {
		return t, unknownTopic(s, "Group name <"+t.Group+"> is unknown.")
	}
	if t.Group == "things" {
		if t.Channel, err = next("channel"); err != nil {
			return t, err
		}
		if !topicChannels[t.Channel] {
			return t, unknownTopic(s, "Channel name <"+t.Channel+"> is unknown.")
		}
	} else {
		t.Channel = "none"
	}
	if t.Criterion, err = next("criterion"); err != nil {
		return t, err
	}
	if !topicCriteria[t.Criterion] {
		return t, unknownTopic(s, "Criterion name <"+t.Criterion+"> is unknown.")
	}
	switch t.Criterion {
	case "commands", "events":
		if t.Action, err = next("action"); err != nil {
			return t, err
		}
		if !topicActions[t.Action] {
			return t, unknownTopic(s, "Action name <"+t.Action+"> is unknown.")
		}
	case "search", "streaming":
		if t.Action, err = next("search action"); err != nil {
			return t, err
		}
		known := searchActions
		if t.Criterion == "streaming" {
			known = streamingAction
		}
		if !known[t.Action] {
			return t, unknownTopic(s, "Search action name <"+t.Action+"> is unknown.")
		}
	case "messages", "acks", "announcements":
		t.Subject = strings.Join(parts, "/")
	}
	return t, nil
}

// entityID is "<namespace>:<name>".
func (t topic) entityID() string { return t.Namespace + ":" + t.Name }
