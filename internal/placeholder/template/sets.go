package template

// Def is one placeholder prefix and the names it resolves.
type Def struct {
	Prefix string
	names  []string          // nil: any non-empty name
	check  func(string) bool // overrides names
}

// Supports reports whether name is one of d's names.
func (d Def) Supports(name string) bool {
	if d.check != nil {
		return d.check(name)
	}
	if d.names == nil {
		return name != ""
	}
	for _, n := range d.names {
		if n == name {
			return true
		}
	}
	return false
}

// Ditto's placeholders, with the names its placeholder classes support.
var (
	Header     = Def{Prefix: "header"}
	Thing      = Def{Prefix: "thing", names: []string{"id", "namespace", "name"}}
	Policy     = Def{Prefix: "policy", names: []string{"id", "namespace", "name"}}
	Entity     = Def{Prefix: "entity", names: []string{"id", "namespace", "name"}}
	Feature    = Def{Prefix: "feature", names: []string{"id"}}
	ThingJSON  = Def{Prefix: "thing-json"}
	Topic      = Def{Prefix: "topic", names: topicNames}
	Resource   = Def{Prefix: "resource", names: []string{"type", "path"}}
	Time       = Def{Prefix: "time", check: validTime}
	Request    = Def{Prefix: "request", names: []string{"subjectId"}}
	Connection = Def{Prefix: "connection", names: []string{"id"}}
	Source     = Def{Prefix: "source", names: []string{"address"}}
	// MQTT3Header is the header placeholder of MQTT 3.1.1 source header
	// mappings: only the headers an MQTT 3.1.1 message has.
	MQTT3Header = Def{Prefix: "header", names: []string{"mqtt.topic", "mqtt.qos", "mqtt.retain"}}
)

var topicNames = []string{"full", "namespace", "entityName", "group", "channel", "criterion", "action", "subject",
	"action-subject"}

// topicWithAlias also accepts topic:entity-name, an alias of Ditto's
// topic:entityName that earlier versions of this service resolved; the
// validation sets do not accept it.
var topicWithAlias = Def{Prefix: "topic", names: append(append([]string(nil), topicNames...), "entity-name")}

func validTime(name string) bool {
	_, err := parseTime(name)
	return err == nil
}

// Set is the placeholders a template may use in one place (Ditto passes
// them to PlaceholderFilter.validate). A prefix may appear more than once:
// a name is supported when any Def of its prefix supports it.
type Set []Def

// Supports reports whether prefix:name is one of s's placeholders.
func (s Set) Supports(prefix, name string) bool {
	for _, d := range s {
		if d.Prefix == prefix && d.Supports(name) {
			return true
		}
	}
	return false
}

// Connectivity is Ditto's Resolvers.getPlaceholders(): what header mappings,
// target addresses and extraFields may use.
var Connectivity = Set{Header, Entity, Thing, ThingJSON, Feature, Topic, Resource, Time, Request, Connection}

// All is every placeholder the service resolves at run time: Connectivity,
// policy:, source: and the topic:entity-name alias. Every validation set is
// a subset of it, so whatever validates also compiles for the data plane.
var All = Set{Header, Entity, Thing, Policy, ThingJSON, Feature, topicWithAlias, Resource, Time, Request,
	Connection, Source}

// Known reports whether prefix:name is a placeholder this package resolves.
func Known(prefix, name string) bool { return All.Supports(prefix, name) }

var connectionIDOnly = Set{Connection}

// ResolveConnectionID resolves a template that may use only
// {{ connection:id }} (acknowledgement labels, the Kafka group ID, the
// addresses of connection announcements); ok=false when it uses any other
// placeholder or a pipeline that ends unresolved or deleted.
func ResolveConnectionID(s, connectionID string) (string, bool) {
	t, err := connectionIDOnly.Compile(s)
	if err != nil {
		return "", false
	}
	r, err := t.Resolve(Func(func(_, _ string) (string, bool) { return connectionID, true }))
	return r, err == nil
}
