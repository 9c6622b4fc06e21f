// Package model is dittoconn's Connection model: parsing, serialisation,
// field selection and validation, wire-compatible with Eclipse Ditto 3.9's
// connectivity model (org.eclipse.ditto.connectivity.model). Validation
// holds the rules every connection type shares; each type's own rules are
// given to Validate through the Protocols table (internal/client/clients),
// because they live beside the type's client and this package sits below
// the clients.
package model

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Connection types (ConnectionType).
const (
	TypeAMQP091  = "amqp-091"
	TypeAMQP10   = "amqp-10"
	TypeMQTT     = "mqtt"
	TypeMQTT5    = "mqtt-5"
	TypeKafka    = "kafka"
	TypeHTTPPush = "http-push"
	TypeHono     = "hono"
)

// Lifecycle values of "__lifecycle".
const (
	LifecycleActive  = "ACTIVE"
	LifecycleDeleted = "DELETED"
)

var connectionTypes = map[string]bool{TypeAMQP091: true, TypeAMQP10: true, TypeMQTT: true, TypeMQTT5: true,
	TypeKafka: true, TypeHTTPPush: true, TypeHono: true}

var connectionStatuses = map[string]bool{"open": true, "closed": true, "failed": true, "misconfigured": true, "unknown": true}

// Connection is a Ditto connection with every top-level field of its JSON.
type Connection struct {
	Lifecycle            string // "__lifecycle": ACTIVE/DELETED, "" when absent
	ID                   string
	Name                 *string // nil is written as JSON null
	Revision             int64   // "_revision", 0 = absent
	Modified             string  // "_modified" ISO-8601 (Instant.toString form), "" = absent
	Created              string  // "_created", "" = absent
	ConnectionType       string
	ConnectionStatus     string
	URI                  string // as Ditto stores it (URI.toASCIIString)
	Sources              []Source
	Targets              []Target
	ClientCount          int
	FailoverEnabled      bool
	ValidateCertificates bool
	ProcessorPoolSize    int
	// SpecificConfig is written in Java HashMap iteration order (what Ditto
	// writes), not in input order; omitted when empty.
	SpecificConfig     map[string]string
	MappingDefinitions map[string]MappingDefinition // omitted when empty; HashMap order
	Credentials        *Credentials
	CA                 string // "ca"; blank is treated as absent
	SSHTunnel          *SSHTunnel
	Tags               []string // ordered set, always written
}

// Source is one entry of "sources".
type Source struct {
	Index                   int // position in the JSON array (sources are written sorted by it)
	Addresses               []string
	ConsumerCount           int
	QoS                     *int
	AuthorizationContext    []string
	Enforcement             *Enforcement
	AcknowledgementRequests *AckRequests
	HeaderMapping           map[string]string // always written; HashMap order
	PayloadMapping          []string
	ReplyTarget             *ReplyTarget
	ReplyTargetEnabled      bool
	DeclaredAcks            []string
}

// Target is one entry of "targets".
type Target struct {
	Address                    string
	Topics                     []FilteredTopic
	QoS                        *int
	AuthorizationContext       []string
	IssuedAcknowledgementLabel string // "" = absent
	HeaderMapping              map[string]string
	PayloadMapping             []string
}

// ReplyTarget is a source's "replyTarget" (without "enabled", kept on Source).
type ReplyTarget struct {
	Address               string
	HeaderMapping         map[string]string
	ExpectedResponseTypes []string
}

// Enforcement is a source's "enforcement".
type Enforcement struct {
	Input   string
	Filters []string
}

// AckRequests is a source's "acknowledgementRequests".
type AckRequests struct {
	Includes []string
	Filter   *string
}

// MappingDefinition is one value of "mappingDefinitions".
type MappingDefinition struct {
	MappingEngine      string
	Options            json.RawMessage // JSON object, input order kept
	IncomingConditions map[string]string
	OutgoingConditions map[string]string
}

// Credentials is "credentials" (or sshTunnel/credentials); Type selects the fields used.
type Credentials struct {
	Type string // client-cert, hmac, oauth-client-credentials, oauth-password, plain, public-key
	// client-cert
	Cert, Key *string
	// hmac
	Algorithm  string
	Parameters json.RawMessage
	// oauth-*
	TokenEndpoint, ClientID, ClientSecret, RequestedScopes, Audience *string
	// plain, public-key, oauth-password
	Username, Password    *string
	PublicKey, PrivateKey string
}

// SSHTunnel is "sshTunnel"; all fields are always written.
type SSHTunnel struct {
	Enabled      bool
	Credentials  Credentials
	ValidateHost bool
	KnownHosts   []string
	URI          string
}

// FilteredTopic is a target topic with its query parameters.
type FilteredTopic struct {
	Topic       string
	Namespaces  []string
	Filter      string
	ExtraFields string
}

// Topics a target may subscribe to (Topic enum).
const (
	TopicTwinEvents              = "_/_/things/twin/events"
	TopicLiveMessages            = "_/_/things/live/messages"
	TopicLiveEvents              = "_/_/things/live/events"
	TopicLiveCommands            = "_/_/things/live/commands"
	TopicPolicyAnnouncements     = "_/_/policies/announcements"
	TopicConnectionAnnouncements = "_/_/connections/announcements"
)

var knownTopics = map[string]bool{TopicTwinEvents: true, TopicLiveMessages: true, TopicLiveEvents: true,
	TopicLiveCommands: true, TopicPolicyAnnouncements: true, TopicConnectionAnnouncements: true}

// String renders the topic as Ditto does: topic?namespaces=..&filter=..&extraFields=..
// with empty parameters left out.
func (t FilteredTopic) String() string {
	var params []string
	if ns := strings.Join(t.Namespaces, ","); ns != "" {
		params = append(params, "namespaces="+ns)
	}
	if t.Filter != "" {
		params = append(params, "filter="+t.Filter)
	}
	if t.ExtraFields != "" {
		params = append(params, "extraFields="+t.ExtraFields)
	}
	if len(params) == 0 {
		return t.Topic
	}
	return t.Topic + "?" + strings.Join(params, "&")
}

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9\-_:]{1,100}$`)

// ValidID reports whether id matches ConnectionId.ID_REGEX.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// ParseFilteredTopic parses a target topic string (ImmutableFilteredTopic.fromString).
func ParseFilteredTopic(s string) (FilteredTopic, error) { return parseFilteredTopic(s, true) }

// parseFilteredTopic skips the extraFields check unless checkExtraFields:
// dittoconn stored topics with any extraFields before it checked them as
// Ditto does, and such a connection must still recover.
func parseFilteredTopic(s string, checkExtraFields bool) (FilteredTopic, error) {
	name, query, hasQuery := strings.Cut(s, "?")
	if !knownTopics[name] {
		return FilteredTopic{}, ditto.TopicInvalid(s, "Unknown topic: "+name)
	}
	ft := FilteredTopic{Topic: name}
	params := map[string]string{}
	if hasQuery && query != "" {
		for _, p := range strings.Split(query, "&") {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				continue
			}
			dk, err1 := javaURLDecode(k)
			dv, err2 := javaURLDecode(v)
			if err1 != nil || err2 != nil {
				return FilteredTopic{}, ditto.TopicInvalid(s, "URLDecoder: Illegal hex characters in escape (%) pattern")
			}
			params[dk] = dv
		}
	}
	// Every topic's extraFields are parsed, kept or not
	// (FilteredTopicStringParser).
	if e := thingFieldSelectorErr(params["extraFields"]); e != nil && checkExtraFields {
		return FilteredTopic{}, e
	}
	// Which parameters a topic keeps (ImmutableFilteredTopicBuilder).
	if name != TopicConnectionAnnouncements {
		if ns := params["namespaces"]; ns != "" {
			ft.Namespaces = JavaSplit(ns, ",")
		}
	}
	if name != TopicConnectionAnnouncements && name != TopicPolicyAnnouncements {
		ft.Filter = params["filter"]
		ft.ExtraFields = params["extraFields"]
	}
	return ft, nil
}

// JavaSplit mimics String.split: trailing empty strings are removed.
func JavaSplit(s, sep string) []string {
	parts := strings.Split(s, sep)
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// javaURLDecode mimics java.net.URLDecoder.decode (UTF-8): '+' is a space.
func javaURLDecode(s string) (string, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", fmt.Errorf("illegal escape")
			}
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), nil
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// formatInstant parses an ISO-8601 instant and renders it like Instant.toString.
func formatInstant(s string) (string, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", false
	}
	t = t.UTC()
	out := t.Format("2006-01-02T15:04:05")
	if ns := t.Nanosecond(); ns != 0 {
		switch {
		case ns%1000000 == 0:
			out += fmt.Sprintf(".%03d", ns/1000000)
		case ns%1000 == 0:
			out += fmt.Sprintf(".%06d", ns/1000)
		default:
			out += fmt.Sprintf(".%09d", ns)
		}
	}
	return out + "Z", true
}

// ackLabelPattern is AcknowledgementLabels.ACK_LABEL_REGEX.
var ackLabelPattern = regexp.MustCompile(`^(\{\{\s*[a-z]+:[a-z]+\s*}}:)?[a-zA-Z0-9\-_:]{3,165}$`)

func sortedSources(src []Source) []Source {
	out := append([]Source(nil), src...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// Clone returns a deep copy.
func (c *Connection) Clone() *Connection {
	if c == nil {
		return nil
	}
	n := *c
	n.Name = clonePtr(c.Name)
	n.Sources = nil
	for _, s := range c.Sources {
		n.Sources = append(n.Sources, s.clone())
	}
	n.Targets = nil
	for _, t := range c.Targets {
		n.Targets = append(n.Targets, t.clone())
	}
	n.SpecificConfig = cloneMap(c.SpecificConfig)
	if c.MappingDefinitions != nil {
		n.MappingDefinitions = make(map[string]MappingDefinition, len(c.MappingDefinitions))
		for k, d := range c.MappingDefinitions {
			d.Options = append(json.RawMessage(nil), d.Options...)
			d.IncomingConditions = cloneMap(d.IncomingConditions)
			d.OutgoingConditions = cloneMap(d.OutgoingConditions)
			n.MappingDefinitions[k] = d
		}
	}
	if c.Credentials != nil {
		cr := c.Credentials.clone()
		n.Credentials = &cr
	}
	if c.SSHTunnel != nil {
		t := *c.SSHTunnel
		t.Credentials = c.SSHTunnel.Credentials.clone()
		t.KnownHosts = cloneSlice(c.SSHTunnel.KnownHosts)
		n.SSHTunnel = &t
	}
	n.Tags = cloneSlice(c.Tags)
	return &n
}

func (s Source) clone() Source {
	n := s
	n.Addresses = cloneSlice(s.Addresses)
	n.QoS = clonePtr(s.QoS)
	n.AuthorizationContext = cloneSlice(s.AuthorizationContext)
	if s.Enforcement != nil {
		e := Enforcement{Input: s.Enforcement.Input, Filters: cloneSlice(s.Enforcement.Filters)}
		n.Enforcement = &e
	}
	if s.AcknowledgementRequests != nil {
		a := AckRequests{Includes: cloneSlice(s.AcknowledgementRequests.Includes), Filter: clonePtr(s.AcknowledgementRequests.Filter)}
		n.AcknowledgementRequests = &a
	}
	n.HeaderMapping = cloneMap(s.HeaderMapping)
	n.PayloadMapping = cloneSlice(s.PayloadMapping)
	if s.ReplyTarget != nil {
		r := ReplyTarget{Address: s.ReplyTarget.Address, HeaderMapping: cloneMap(s.ReplyTarget.HeaderMapping),
			ExpectedResponseTypes: cloneSlice(s.ReplyTarget.ExpectedResponseTypes)}
		n.ReplyTarget = &r
	}
	n.DeclaredAcks = cloneSlice(s.DeclaredAcks)
	return n
}

func (t Target) clone() Target {
	n := t
	n.Topics = nil
	for _, ft := range t.Topics {
		ft.Namespaces = cloneSlice(ft.Namespaces)
		n.Topics = append(n.Topics, ft)
	}
	n.QoS = clonePtr(t.QoS)
	n.AuthorizationContext = cloneSlice(t.AuthorizationContext)
	n.HeaderMapping = cloneMap(t.HeaderMapping)
	n.PayloadMapping = cloneSlice(t.PayloadMapping)
	return n
}

func (c Credentials) clone() Credentials {
	n := c
	n.Cert, n.Key = clonePtr(c.Cert), clonePtr(c.Key)
	n.Parameters = append(json.RawMessage(nil), c.Parameters...)
	n.TokenEndpoint, n.ClientID, n.ClientSecret = clonePtr(c.TokenEndpoint), clonePtr(c.ClientID), clonePtr(c.ClientSecret)
	n.RequestedScopes, n.Audience = clonePtr(c.RequestedScopes), clonePtr(c.Audience)
	n.Username, n.Password = clonePtr(c.Username), clonePtr(c.Password)
	return n
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T{}, s...)
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	n := make(map[string]string, len(m))
	for k, v := range m {
		n[k] = v
	}
	return n
}

// URIParts returns scheme, username, password (hasCredentials reports whether
// the user-info had a ':'), host and port of the connection URI. ok is false
// for a blank or invalid URI.
func (c *Connection) URIParts() (scheme, user, pass string, hasCredentials bool, host string, port int, ok bool) {
	u, valid := parseConnURI(c.URI)
	if !valid {
		return "", "", "", false, "", 0, false
	}
	user, pass, hasCredentials = u.credentials()
	return u.Scheme, user, pass, hasCredentials, u.Host, u.Port, true
}

// ackRequestParseFailed is Ditto's AcknowledgementRequestParseException (422)
// for a malformed label in a source's acknowledgementRequests.includes, with
// the label exception that caused it, as Ditto words it.
func ackRequestParseFailed(label string) *ditto.Error {
	return ditto.New(422, "acknowledgement:request.parsing.failed",
		"<"+label+"> cannot be parsed to an acknowledgement request! Cause: Acknowledgement label <"+label+"> is invalid.",
		"The string to be parsed must be a valid representation of an acknowledgement request.")
}
