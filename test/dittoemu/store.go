package dittoemu

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

type perm struct{ read, write bool }

type thing struct {
	doc      map[string]any
	revision int64
	modified string
}

// store is the in-memory twin and policy store. A thing's policy is a
// subject → READ/WRITE table on the whole thing (Ditto's policies are finer:
// resources and revokes per path; the emulator grants on thing:/ only).
type store struct {
	mu       sync.Mutex
	things   map[string]*thing
	policies map[string]map[string]perm
	now      func() time.Time
}

func newStore() *store {
	return &store{things: map[string]*thing{}, policies: map[string]map[string]perm{}, now: time.Now}
}

func (s *store) grant(id, subject string, read, write bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.policies[id]
	if p == nil {
		p = map[string]perm{}
		s.policies[id] = p
	}
	p[subject] = perm{read, write}
}

func (s *store) revoke(id, subject string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.policies[id], subject)
}

func (s *store) allowedLocked(id string, subjects []string, write bool) bool {
	p := s.policies[id]
	for _, sub := range subjects {
		if g, ok := p[sub]; ok && (g.read && !write || g.write && write) {
			return true
		}
	}
	return false
}

func (s *store) allowed(id string, subjects []string, write bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allowedLocked(id, subjects, write)
}

// readers are the subjects that may READ the thing (Ditto's ditto-read-subjects).
func (s *store) readersLocked(id string) map[string]bool {
	out := map[string]bool{}
	for sub, g := range s.policies[id] {
		if g.read {
			out[sub] = true
		}
	}
	return out
}

func (s *store) readers(id string) map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readersLocked(id)
}

func (s *store) get(id string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	th := s.things[id]
	if th == nil {
		return nil, false
	}
	b, _ := json.Marshal(th.doc)
	return b, true
}

// snapshot is a deep copy of the thing for enrichment and filters.
func (s *store) snapshot(id string) (map[string]any, bool) {
	raw, ok := s.get(id)
	if !ok {
		return nil, false
	}
	v, _ := decodeJSON(raw)
	m, _ := v.(map[string]any)
	return m, true
}

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// result of a twin command.
type result struct {
	resp    *protocol.Message
	event   *protocol.Message
	readers map[string]bool // subjects allowed to read the event
}

// apply executes a twin command for subjects. It returns the response or
// Ditto's error; a modifying command also returns its event.
func (s *store) apply(subjects []string, t protocol.Topic, m *protocol.Message) (*result, *ditto.Error) {
	id := t.EntityID()
	segs := protocol.PathSegments(m.Path)
	s.mu.Lock()
	defer s.mu.Unlock()
	th := s.things[id]
	readable := th != nil && s.allowedLocked(id, subjects, false)
	respond := func(status int, value json.RawMessage) *protocol.Message {
		h := map[string]string{}
		if c, ok := m.Headers["correlation-id"]; ok {
			h["correlation-id"] = c
		}
		return &protocol.Message{Topic: m.Topic, Headers: h, Path: pathOf(segs), Value: value, Status: status}
	}
	var value any
	if len(m.Value) > 0 {
		v, err := decodeJSON(m.Value)
		if err != nil {
			return nil, ditto.JSONParseFailed(string(m.Value))
		}
		value = v
	}
	switch t.Action {
	case "retrieve":
		if !readable {
			return nil, errThingNotFound(id)
		}
		v, ok := lookup(th.doc, segs)
		if !ok {
			return nil, notFound(id, segs)
		}
		if m.Fields != "" {
			v = selectFields(v, m.Fields)
		}
		b, _ := json.Marshal(v)
		return &result{resp: respond(http.StatusOK, b)}, nil
	case "create":
		if len(segs) != 0 {
			return nil, errUnsupported("create at a path other than /")
		}
		if th != nil {
			return nil, errThingConflict(id)
		}
		return s.createLocked(subjects, id, value, m, respond)
	case "modify", "merge":
		if th == nil {
			if len(segs) == 0 && t.Action == "modify" {
				return s.createLocked(subjects, id, value, m, respond)
			}
			return nil, errThingNotFound(id)
		}
		if !readable {
			return nil, errThingNotFound(id)
		}
		if !s.allowedLocked(id, subjects, true) {
			if len(segs) >= 2 && segs[0] == "attributes" {
				return nil, errAttributeNotModifiable(id, "/"+strings.Join(segs[1:], "/"))
			}
			return nil, errThingNotModifiable(id)
		}
		if len(segs) >= 3 && segs[0] == "features" {
			if _, ok := lookup(th.doc, segs[:2]); !ok {
				return nil, errFeatureNotFound(id, segs[1])
			}
		}
		if len(segs) == 0 {
			if obj, ok := value.(map[string]any); ok {
				if tid, ok := obj["thingId"].(string); ok && tid != id {
					return nil, errThingIDNotSettable()
				}
			}
		}
		_, existed := lookup(th.doc, segs)
		if t.Action == "merge" {
			old, _ := lookup(th.doc, segs)
			value = mergePatch(old, value)
		}
		if t.Action == "merge" && value == nil && len(segs) > 0 {
			deletePath(th.doc, segs) // a null merge patch removes the member
		} else if len(segs) == 0 {
			obj, ok := value.(map[string]any)
			if !ok {
				return nil, ditto.JSONNotAnObject(string(m.Value))
			}
			obj["thingId"] = id
			if _, ok := obj["policyId"]; !ok {
				obj["policyId"] = th.doc["policyId"]
			}
			th.doc = obj
		} else {
			setPath(th.doc, segs, value)
		}
		th.revision++
		th.modified = s.now().UTC().Format(time.RFC3339Nano)
		r := &result{readers: s.readersLocked(id)}
		action := "modified"
		status, respValue := http.StatusNoContent, json.RawMessage(nil)
		switch {
		case t.Action == "merge":
			action = "merged"
		case !existed:
			action, status, respValue = "created", http.StatusCreated, m.Value
		}
		if status == http.StatusNoContent && t.Action == "modify" && nullOn204(segs) {
			// Ditto writes "value": null into these 204 responses (its generated
			// ModifyAttributes/ModifyFeatures/ModifyFeature response examples)
			respValue = json.RawMessage("null")
		}
		r.resp = respond(status, respValue)
		evValue := m.Value
		r.event = s.eventLocked(t, m, segs, action, evValue, th)
		if action == "merged" {
			r.event.Headers["content-type"] = "application/merge-patch+json"
		}
		return r, nil
	case "delete":
		if !readable {
			return nil, errThingNotFound(id)
		}
		if !s.allowedLocked(id, subjects, true) {
			if len(segs) == 0 {
				return nil, errThingNotDeletable(id)
			}
			return nil, errThingNotModifiable(id)
		}
		r := &result{readers: s.readersLocked(id)}
		if len(segs) == 0 {
			delete(s.things, id)
		} else {
			if _, ok := lookup(th.doc, segs); !ok {
				return nil, notFound(id, segs)
			}
			deletePath(th.doc, segs)
		}
		th.revision++
		th.modified = s.now().UTC().Format(time.RFC3339Nano)
		r.resp = respond(http.StatusNoContent, nil)
		r.event = s.eventLocked(t, m, segs, "deleted", nil, th)
		return r, nil
	}
	return nil, errUnsupported("the twin command action " + t.Action)
}

func (s *store) createLocked(subjects []string, id string, value any, m *protocol.Message,
	respond func(int, json.RawMessage) *protocol.Message) (*result, *ditto.Error) {
	obj, ok := value.(map[string]any)
	if !ok {
		if value != nil {
			return nil, ditto.JSONNotAnObject(string(m.Value))
		}
		obj = map[string]any{}
	}
	if tid, ok := obj["thingId"].(string); ok && tid != id {
		return nil, errThingIDNotSettable()
	}
	obj["thingId"] = id
	if _, ok := obj["policyId"]; !ok {
		// Ditto creates an implicit policy with the thing's id
		obj["policyId"] = id
	}
	th := &thing{doc: obj, revision: 1, modified: s.now().UTC().Format(time.RFC3339Nano)}
	s.things[id] = th
	p := s.policies[id]
	if p == nil {
		p = map[string]perm{}
		s.policies[id] = p
	}
	for _, sub := range subjects {
		p[sub] = perm{true, true}
	}
	b, _ := json.Marshal(obj)
	t, _ := protocol.ParseTopic(m.Topic)
	r := &result{readers: s.readersLocked(id), resp: respond(http.StatusCreated, b)}
	r.event = s.eventLocked(t, m, nil, "created", b, th)
	return r, nil
}

func (s *store) eventLocked(t protocol.Topic, m *protocol.Message, segs []string, action string, value json.RawMessage, th *thing) *protocol.Message {
	et := protocol.Topic{Namespace: t.Namespace, EntityName: t.EntityName, Group: protocol.GroupThings,
		Channel: protocol.ChannelTwin, Criterion: protocol.CriterionEvents, Action: action}
	h := map[string]string{}
	if c, ok := m.Headers["correlation-id"]; ok {
		h["correlation-id"] = c
	}
	return &protocol.Message{Topic: et.String(), Headers: h, Path: pathOf(segs), Value: value,
		Revision: th.revision, Timestamp: th.modified}
}

func nullOn204(segs []string) bool {
	return len(segs) == 1 && (segs[0] == "attributes" || segs[0] == "features") ||
		len(segs) == 2 && segs[0] == "features"
}

func pathOf(segs []string) string { return "/" + strings.Join(segs, "/") }

func notFound(id string, segs []string) *ditto.Error {
	switch {
	case len(segs) == 1 && segs[0] == "attributes":
		return errAttributesNotFound(id)
	case len(segs) >= 2 && segs[0] == "attributes":
		return errAttributeNotFound(id, "/"+strings.Join(segs[1:], "/"))
	case len(segs) == 1 && segs[0] == "features":
		return errFeaturesNotFound(id)
	case len(segs) == 2 && segs[0] == "features":
		return errFeatureNotFound(id, segs[1])
	case len(segs) == 3 && segs[0] == "features" && segs[2] == "properties":
		return errFeaturePropertiesNotFound(id, segs[1])
	case len(segs) >= 4 && segs[0] == "features" && segs[2] == "properties":
		return errFeaturePropertyNotFound(id, segs[1], "/"+strings.Join(segs[3:], "/"))
	}
	return errThingNotFound(id)
}

func lookup(doc any, segs []string) (any, bool) {
	cur := doc
	for _, s := range segs {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[s]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func setPath(doc map[string]any, segs []string, v any) {
	cur := doc
	for _, s := range segs[:len(segs)-1] {
		next, ok := cur[s].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[s] = next
		}
		cur = next
	}
	cur[segs[len(segs)-1]] = v
}

func deletePath(doc map[string]any, segs []string) {
	parent, ok := lookup(doc, segs[:len(segs)-1])
	if obj, isObj := parent.(map[string]any); ok && isObj {
		delete(obj, segs[len(segs)-1])
	}
}

// mergePatch is RFC 7396 JSON merge patch, which Ditto's merge commands apply.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// selectFields applies a Ditto field selector ("thingId,attributes(location),features/f")
// to a JSON object: the selected pointers, absent ones left out.
func selectFields(v any, selector string) any {
	obj, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	for _, f := range splitTop(selector) {
		name, sub, hasSub := strings.Cut(f, "(")
		if hasSub {
			sub = strings.TrimSuffix(sub, ")")
		}
		segs := protocol.PathSegments(name)
		val, ok := lookup(obj, segs)
		if !ok || len(segs) == 0 {
			continue
		}
		if hasSub {
			val = selectFields(val, sub)
		}
		if m, isObj := val.(map[string]any); hasSub && isObj && len(m) == 0 {
			continue
		}
		setPath(out, segs, val)
	}
	return out
}

func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
