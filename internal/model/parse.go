package model

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Parse parses a stored connection (journal event or snapshot) the way Ditto
// reads it back: ConnectionMigrationUtil's legacy migrations first, then the
// model parser and builder (see ParseCommand). Errors are *ditto.Error.
func Parse(data []byte) (*Connection, error) { return parse(data, true) }

// ParseCommand parses the connection of a create/modify/test command exactly
// as Ditto does (ConnectivityModelFactory.connectionFromJson): no legacy
// journal migrations, but the builder's own checks and migrations
// (mappingContext, reply targets) apply.
func ParseCommand(data []byte) (*Connection, error) { return parse(data, false) }

func parse(data []byte, migrate bool) (c *Connection, err error) {
	defer func() {
		// Parsing must never take the service down; any bug becomes a 400.
		if r := recover(); r != nil {
			c, err = nil, ditto.JSONInvalid(fmt.Sprintf("Failed to parse connection JSON: %v", r))
		}
	}()
	root, perr := parseJSON(data)
	if perr != nil {
		return nil, ditto.JSONInvalid("Failed to parse JSON string '" + string(data) + "'!")
	}
	if kindOf(root) != kObject {
		return nil, ditto.JSONInvalid("Failed to parse JSON string '" + string(data) + "'!")
	}
	if migrate {
		root = migrateLegacy(root)
	}
	return fromJSON(root, migrate)
}

// typeErr is the JsonParseException of a typed field definition.
func typeErr(v jv, pointer, typ string) error {
	return ditto.JSONInvalid(fmt.Sprintf("Value <%s> for <%s> is not of type <%s>!", text(v), pointer, typ))
}

// optStr reads a string field; null counts as absent.
func optStr(o jv, key, pointer string) (string, bool, error) {
	v, ok := get(o, key)
	if !ok || kindOf(v) == kNull {
		return "", false, nil
	}
	if kindOf(v) != kString {
		return "", false, typeErr(v, pointer, "String")
	}
	return strOf(v), true, nil
}

func reqStr(o jv, key, pointer string) (string, error) {
	s, ok, err := optStr(o, key, pointer)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", ditto.JSONFieldMissing(pointer)
	}
	return s, nil
}

func optInt(o jv, key, pointer string) (int64, bool, error) {
	v, ok := get(o, key)
	if !ok || kindOf(v) == kNull {
		return 0, false, nil
	}
	i, isInt := asInt(v)
	if !isInt || i < -1<<31 || i > 1<<31-1 {
		return 0, false, typeErr(v, pointer, "Integer")
	}
	return i, true, nil
}

func optLong(o jv, key, pointer string) (int64, bool, error) {
	v, ok := get(o, key)
	if !ok || kindOf(v) == kNull {
		return 0, false, nil
	}
	i, isInt := asInt(v)
	if !isInt {
		return 0, false, typeErr(v, pointer, "Long")
	}
	return i, true, nil
}

func optBool(o jv, key, pointer string) (bool, bool, error) {
	v, ok := get(o, key)
	if !ok || kindOf(v) == kNull {
		return false, false, nil
	}
	if kindOf(v) != kBool {
		return false, false, typeErr(v, pointer, "Boolean")
	}
	return boolOf(v), true, nil
}

func optKind(o jv, key, pointer string, k kind) (jv, bool, error) {
	v, ok := get(o, key)
	if !ok || kindOf(v) == kNull {
		return nil, false, nil
	}
	if kindOf(v) != k {
		return nil, false, typeErr(v, pointer, javaTypeName(k))
	}
	return v, true, nil
}

// stringsOf maps an array with JsonValue::asString (non-strings fail).
func stringsOf(a jv, pointer string) ([]string, error) {
	out := []string{}
	for _, e := range arrOf(a) {
		if kindOf(e) != kString {
			return nil, typeErr(e, pointer, "String")
		}
		out = append(out, strOf(e))
	}
	return out, nil
}

// onlyStrings keeps the string elements (filter(JsonValue::isString)).
func onlyStrings(a jv) []string {
	out := []string{}
	for _, e := range arrOf(a) {
		if kindOf(e) == kString {
			out = append(out, strOf(e))
		}
	}
	return out
}

func dedup(ss []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// stringMap reads an object as map string→string; non-strings become their
// JSON text when lenient, otherwise they are dropped (header mappings).
func stringMap(o jv, lenient bool) map[string]string {
	m := map[string]string{}
	for k, v := range fields(o) {
		switch {
		case kindOf(v) == kString:
			m[k] = strOf(v)
		case lenient:
			m[k] = text(v)
		}
	}
	return m
}

// stored relaxes what dittoconn once accepted and Ditto refuses (see
// parseTarget), so a journal written before the check still reads back.
func fromJSON(o jv, stored bool) (*Connection, error) {
	c := &Connection{ClientCount: 1, ProcessorPoolSize: 1, FailoverEnabled: true, ValidateCertificates: true,
		SpecificConfig: map[string]string{}, MappingDefinitions: map[string]MappingDefinition{}, Tags: []string{}}
	var err error
	if c.ConnectionType, err = reqStr(o, "connectionType", "/connectionType"); err != nil {
		return nil, err
	}
	if !connectionTypes[c.ConnectionType] {
		return nil, ditto.JSONInvalid(fmt.Sprintf("Connection type <%s> is invalid!", c.ConnectionType))
	}
	if c.ConnectionType == TypeHono && !has(o, "uri") {
		objOf(o).Set("uri", jstr("")) // HonoConnection takes its URI from service config
	}
	// Same order as AbstractConnection.buildFromJson: mapping context and
	// definitions are read before the id.
	var legacyMapping *MappingDefinition
	if mc, ok, err := optKind(o, "mappingContext", "/mappingContext", kObject); err != nil {
		return nil, err
	} else if ok {
		d, err := parseMappingContext(mc)
		if err != nil {
			return nil, err
		}
		legacyMapping = &d
	}
	if md, ok, err := optKind(o, "mappingDefinitions", "/mappingDefinitions", kObject); err != nil {
		return nil, err
	} else if ok {
		for k, v := range fields(md) {
			if kindOf(v) != kObject {
				continue
			}
			d, err := parseMappingContext(v)
			if err != nil {
				return nil, err
			}
			c.MappingDefinitions[k] = d
		}
	}
	if c.ID, err = reqStr(o, "id", "/id"); err != nil {
		return nil, err
	}
	if !ValidID(c.ID) {
		return nil, ditto.ConnectionIDInvalid(c.ID)
	}
	if c.ConnectionStatus, err = reqStr(o, "connectionStatus", "/connectionStatus"); err != nil {
		return nil, err
	}
	if !connectionStatuses[c.ConnectionStatus] {
		return nil, ditto.JSONInvalid(fmt.Sprintf("Connection status <%s> is invalid!", c.ConnectionStatus))
	}
	uri, err := reqStr(o, "uri", "/uri")
	if err != nil {
		return nil, err
	}
	if arr, ok, err := optKind(o, "sources", "/sources", kArray); err != nil {
		return nil, err
	} else if ok {
		for i, e := range arrOf(arr) {
			if kindOf(e) != kObject {
				continue
			}
			s, err := parseSource(e, i)
			if err != nil {
				return nil, err
			}
			c.Sources = append(c.Sources, s)
		}
	}
	if arr, ok, err := optKind(o, "targets", "/targets", kArray); err != nil {
		return nil, err
	} else if ok {
		for _, e := range arrOf(arr) {
			if kindOf(e) != kObject {
				continue
			}
			t, err := parseTarget(e, stored)
			if err != nil {
				return nil, err
			}
			c.Targets = append(c.Targets, t)
		}
	}
	if name, ok, err := optStr(o, "name", "/name"); err != nil {
		return nil, err
	} else if ok {
		c.Name = &name
	}
	if sc, ok, err := optKind(o, "specificConfig", "/specificConfig", kObject); err != nil {
		return nil, err
	} else if ok {
		c.SpecificConfig = stringMap(sc, true)
	}
	if tags, ok, err := optKind(o, "tags", "/tags", kArray); err != nil {
		return nil, err
	} else if ok {
		c.Tags = dedup(onlyStrings(tags))
	}
	if lc, ok, err := optStr(o, "__lifecycle", "/__lifecycle"); err != nil {
		return nil, err
	} else if ok && (lc == LifecycleActive || lc == LifecycleDeleted) {
		c.Lifecycle = lc
	}
	if rev, ok, err := optLong(o, "_revision", "/_revision"); err != nil {
		return nil, err
	} else if ok {
		c.Revision = rev
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"_modified", &c.Modified}, {"_created", &c.Created}} {
		s, ok, err := optStr(o, f.key, "/"+f.key)
		if err != nil {
			return nil, err
		}
		if ok {
			ts, valid := formatInstant(s)
			if !valid {
				// Ditto names /_modified here even for _created.
				return nil, ditto.JSONInvalid("The JSON object's field '/_modified' is not in ISO-8601 format as expected")
			}
			*f.dst = ts
		}
	}
	if cr, ok, err := optKind(o, "credentials", "/credentials", kObject); err != nil {
		return nil, err
	} else if ok {
		cred, err := parseCredentials(cr)
		if err != nil {
			return nil, err
		}
		c.Credentials = &cred
	}
	if n, ok, err := optInt(o, "clientCount", "/clientCount"); err != nil {
		return nil, err
	} else if ok {
		if n <= 0 {
			return nil, ditto.ConfigurationInvalid("The client count must be positive!")
		}
		c.ClientCount = int(n)
	}
	if b, ok, err := optBool(o, "failoverEnabled", "/failoverEnabled"); err != nil {
		return nil, err
	} else if ok {
		c.FailoverEnabled = b
	}
	if b, ok, err := optBool(o, "validateCertificates", "/validateCertificates"); err != nil {
		return nil, err
	} else if ok {
		c.ValidateCertificates = b
	}
	if n, ok, err := optInt(o, "processorPoolSize", "/processorPoolSize"); err != nil {
		return nil, err
	} else if ok {
		if n <= 0 {
			return nil, ditto.ConfigurationInvalid("The processor pool size must be positive!")
		}
		c.ProcessorPoolSize = int(n)
	}
	if ca, ok, err := optStr(o, "ca", "/ca"); err != nil {
		return nil, err
	} else if ok && strings.TrimSpace(ca) != "" {
		c.CA = ca
	}
	if st, ok, err := optKind(o, "sshTunnel", "/sshTunnel", kObject); err != nil {
		return nil, err
	} else if ok {
		t, err := parseSSHTunnel(st)
		if err != nil {
			return nil, err
		}
		c.SSHTunnel = &t
	}
	// ImmutableConnection.Builder.build()
	if err := checkBuilder(c); err != nil {
		return nil, err
	}
	migrateBuilder(c, legacyMapping)
	// The URI is checked last, when the connection object is constructed.
	if strings.TrimSpace(uri) == "" {
		c.URI = ""
	} else {
		u, ok := parseConnURI(uri)
		if !ok {
			return nil, ditto.URIInvalid(uri)
		}
		c.URI = u.ASCII
	}
	return c, nil
}

func parseMappingContext(o jv) (MappingDefinition, error) {
	var d MappingDefinition
	var err error
	if d.MappingEngine, err = reqStr(o, "mappingEngine", "/mappingEngine"); err != nil {
		return d, err
	}
	opts, ok, err := optKind(o, "options", "/options", kObject)
	if err != nil {
		return d, err
	}
	if !ok {
		return d, ditto.JSONFieldMissing("/options")
	}
	d.Options = json.RawMessage(text(opts))
	for _, f := range []struct {
		key string
		dst *map[string]string
	}{{"incomingConditions", &d.IncomingConditions}, {"outgoingConditions", &d.OutgoingConditions}} {
		v, ok, err := optKind(o, f.key, "/"+f.key, kObject)
		if err != nil {
			return d, err
		}
		*f.dst = map[string]string{}
		if ok {
			*f.dst = stringMap(v, true)
		}
	}
	return d, nil
}

func parseAuthContext(o jv) ([]string, error) {
	a, ok, err := optKind(o, "authorizationContext", "/authorizationContext", kArray)
	if err != nil || !ok {
		return []string{}, err
	}
	return onlyStrings(a), nil
}

func parseHeaderMapping(o jv, key string) (map[string]string, error) {
	hm, ok, err := optKind(o, key, "/"+key, kObject)
	if err != nil || !ok {
		return map[string]string{}, err
	}
	return stringMap(hm, false), nil
}

func parsePayloadMapping(o jv) ([]string, error) {
	pm, ok, err := optKind(o, "payloadMapping", "/payloadMapping", kArray)
	if err != nil || !ok {
		return []string{}, err
	}
	return onlyStrings(pm), nil
}

func parseSource(o jv, index int) (Source, error) {
	s := Source{Index: index, ConsumerCount: 1, ReplyTargetEnabled: true}
	if a, ok, err := optKind(o, "addresses", "/addresses", kArray); err != nil {
		return s, err
	} else {
		s.Addresses = []string{}
		if ok {
			addrs, err := stringsOf(a, "/addresses")
			if err != nil {
				return s, err
			}
			s.Addresses = dedup(addrs)
		}
	}
	if n, ok, err := optInt(o, "consumerCount", "/consumerCount"); err != nil {
		return s, err
	} else if ok {
		s.ConsumerCount = int(n)
	}
	if n, ok, err := optInt(o, "qos", "/qos"); err != nil {
		return s, err
	} else if ok {
		q := int(n)
		s.QoS = &q
	}
	var err error
	if s.AuthorizationContext, err = parseAuthContext(o); err != nil {
		return s, err
	}
	if e, ok, err := optKind(o, "enforcement", "/enforcement", kObject); err != nil {
		return s, err
	} else if ok {
		enf := Enforcement{Filters: []string{}}
		if f, ok, err := optKind(e, "filters", "/filters", kArray); err != nil {
			return s, err
		} else if ok {
			fs, err := stringsOf(f, "/filters")
			if err != nil {
				return s, err
			}
			enf.Filters = dedup(fs)
		}
		if enf.Input, err = reqStr(e, "input", "/input"); err != nil {
			return s, err
		}
		s.Enforcement = &enf
	}
	if a, ok, err := optKind(o, "acknowledgementRequests", "/acknowledgementRequests", kObject); err != nil {
		return s, err
	} else if ok {
		ar := AckRequests{Includes: []string{}}
		if inc, ok, err := optKind(a, "includes", "/includes", kArray); err != nil {
			return s, err
		} else if ok {
			ar.Includes = dedup(onlyStrings(inc))
			for _, l := range ar.Includes {
				if !ackLabelPattern.MatchString(l) {
					return s, ackRequestParseFailed(l)
				}
			}
		}
		if f, ok, err := optStr(a, "filter", "/filter"); err != nil {
			return s, err
		} else if ok {
			ar.Filter = &f
		}
		s.AcknowledgementRequests = &ar
	}
	if s.HeaderMapping, err = parseHeaderMapping(o, "headerMapping"); err != nil {
		return s, err
	}
	if s.PayloadMapping, err = parsePayloadMapping(o); err != nil {
		return s, err
	}
	var rtObj jv
	var hasRT bool
	if rtObj, hasRT, err = optKind(o, "replyTarget", "/replyTarget", kObject); err != nil {
		return s, err
	}
	if hasRT {
		if b, ok, err := optBool(rtObj, "enabled", "/replyTarget/enabled"); err != nil {
			return s, err
		} else if ok {
			s.ReplyTargetEnabled = b
		}
		if addr, ok, err := optStr(rtObj, "address", "/address"); err != nil {
			return s, err
		} else if ok {
			rt := ReplyTarget{Address: addr, ExpectedResponseTypes: []string{"response", "error"}}
			if rt.HeaderMapping, err = parseHeaderMapping(rtObj, "headerMapping"); err != nil {
				return s, err
			}
			if ert, ok, err := optKind(rtObj, "expectedResponseTypes", "/expectedResponseTypes", kArray); err != nil {
				return s, err
			} else if ok {
				types, err := stringsOf(ert, "/expectedResponseTypes")
				if err != nil {
					return s, err
				}
				rt.ExpectedResponseTypes = []string{}
				for _, t := range dedup(types) {
					if t == "response" || t == "error" || t == "nack" {
						rt.ExpectedResponseTypes = append(rt.ExpectedResponseTypes, t)
					}
				}
			}
			s.ReplyTarget = &rt
		}
	}
	if d, ok, err := optKind(o, "declaredAcks", "/declaredAcks", kArray); err != nil {
		return s, err
	} else if ok {
		s.DeclaredAcks = []string{}
		for _, e := range arrOf(d) {
			label := strOf(e)
			if kindOf(e) != kString {
				label = text(e) // formatAsString
			}
			if !ackLabelPattern.MatchString(label) {
				return s, ditto.AckLabelInvalid(label, "")
			}
			s.DeclaredAcks = append(s.DeclaredAcks, label)
		}
		s.DeclaredAcks = dedup(s.DeclaredAcks)
	}
	return s, nil
}

func parseTarget(o jv, stored bool) (Target, error) {
	t := Target{Topics: []FilteredTopic{}}
	if a, ok, err := optKind(o, "topics", "/topics", kArray); err != nil {
		return t, err
	} else if ok {
		strs, err := stringsOf(a, "/topics")
		if err != nil {
			return t, err
		}
		seen := map[string]bool{}
		for _, s := range strs {
			ft, err := parseFilteredTopic(s, !stored)
			if err != nil {
				return t, err
			}
			if k := ft.String(); !seen[k] {
				seen[k] = true
				t.Topics = append(t.Topics, ft)
			}
		}
	}
	var err error
	if t.AuthorizationContext, err = parseAuthContext(o); err != nil {
		return t, err
	}
	if l, ok, err := optStr(o, "issuedAcknowledgementLabel", "/issuedAcknowledgementLabel"); err != nil {
		return t, err
	} else if ok {
		if !ackLabelPattern.MatchString(l) {
			return t, ditto.AckLabelInvalid(l, "")
		}
		t.IssuedAcknowledgementLabel = l
	}
	if t.HeaderMapping, err = parseHeaderMapping(o, "headerMapping"); err != nil {
		return t, err
	}
	if t.PayloadMapping, err = parsePayloadMapping(o); err != nil {
		return t, err
	}
	if t.Address, err = reqStr(o, "address", "/address"); err != nil {
		return t, err
	}
	if n, ok, err := optInt(o, "qos", "/qos"); err != nil {
		return t, err
	} else if ok {
		q := int(n)
		t.QoS = &q
	}
	return t, nil
}

var credentialTypes = map[string]bool{"client-cert": true, "hmac": true, "oauth-client-credentials": true,
	"oauth-password": true, "plain": true, "public-key": true}

func parseCredentials(o jv) (Credentials, error) {
	var c Credentials
	var err error
	if c.Type, err = reqStr(o, "type", "/type"); err != nil {
		return c, err
	}
	if !credentialTypes[c.Type] {
		e := ditto.JSONInvalid(fmt.Sprintf("Unknown credential type <%s>", c.Type))
		e.Description = "Original JSON: " + text(o)
		return c, e
	}
	opt := func(key string) (*string, error) {
		s, ok, err := optStr(o, key, "/"+key)
		if err != nil || !ok {
			return nil, err
		}
		return &s, nil
	}
	req := func(key string) (string, error) { return reqStr(o, key, "/"+key) }
	switch c.Type {
	case "client-cert":
		if c.Cert, err = opt("cert"); err != nil {
			return c, err
		}
		c.Key, err = opt("key")
	case "hmac":
		if c.Algorithm, err = req("algorithm"); err != nil {
			return c, err
		}
		p, ok, err := optKind(o, "parameters", "/parameters", kObject)
		if err != nil {
			return c, err
		}
		if !ok {
			return c, ditto.JSONFieldMissing("/parameters")
		}
		c.Parameters = json.RawMessage(text(p))
	case "oauth-client-credentials", "oauth-password":
		for _, f := range []struct {
			key string
			dst **string
		}{{"tokenEndpoint", &c.TokenEndpoint}, {"clientId", &c.ClientID}, {"clientSecret", &c.ClientSecret},
			{"requestedScopes", &c.RequestedScopes}, {"audience", &c.Audience}} {
			if *f.dst, err = opt(f.key); err != nil {
				return c, err
			}
		}
		if c.Type == "oauth-password" {
			if c.Username, err = opt("username"); err != nil {
				return c, err
			}
			c.Password, err = opt("password")
		}
	case "plain":
		var u, p string
		if u, err = req("username"); err != nil {
			return c, err
		}
		if p, err = req("password"); err != nil {
			return c, err
		}
		c.Username, c.Password = &u, &p
	case "public-key":
		var u string
		if u, err = req("username"); err != nil {
			return c, err
		}
		c.Username = &u
		if c.PublicKey, err = req("publicKey"); err != nil {
			return c, err
		}
		c.PrivateKey, err = req("privateKey")
	}
	return c, err
}

func parseSSHTunnel(o jv) (SSHTunnel, error) {
	var t SSHTunnel
	var ok bool
	var err error
	if t.Enabled, ok, err = optBool(o, "enabled", "/enabled"); err != nil {
		return t, err
	} else if !ok {
		return t, ditto.JSONFieldMissing("/enabled")
	}
	cr, ok, err := optKind(o, "credentials", "/credentials", kObject)
	if err != nil {
		return t, err
	}
	if !ok {
		return t, ditto.JSONFieldMissing("/credentials")
	}
	if t.Credentials, err = parseCredentials(cr); err != nil {
		return t, err
	}
	if t.ValidateHost, ok, err = optBool(o, "validateHost", "/validateHost"); err != nil {
		return t, err
	} else if !ok {
		return t, ditto.JSONFieldMissing("/validateHost")
	}
	t.KnownHosts = []string{}
	if kh, ok, err := optKind(o, "knownHosts", "/knownHosts", kArray); err != nil {
		return t, err
	} else if ok {
		if t.KnownHosts, err = stringsOf(kh, "/knownHosts"); err != nil {
			return t, err
		}
	}
	t.URI, err = reqStr(o, "uri", "/uri")
	return t, err
}

// checkBuilder runs ImmutableConnection.Builder.build()'s checks.
func checkBuilder(c *Connection) error {
	if len(c.Sources) == 0 && len(c.Targets) == 0 {
		return ditto.ConfigurationInvalid("Either a source or a target must be specified in the configuration of a connection!")
	}
	var srcs, tgts []string
	for _, s := range c.Sources {
		if len(s.AuthorizationContext) == 0 {
			srcs = append(srcs, s.Addresses...)
		}
	}
	for _, t := range c.Targets {
		if len(t.AuthorizationContext) == 0 {
			tgts = append(tgts, t.Address)
		}
	}
	srcs, tgts = dedup(srcs), dedup(tgts)
	if len(srcs) > 0 || len(tgts) > 0 {
		msg := "The "
		if len(srcs) > 0 {
			msg += "Sources " + JavaList(srcs)
		}
		if len(srcs) > 0 && len(tgts) > 0 {
			msg += " and "
		}
		if len(tgts) > 0 {
			msg += "Targets " + JavaList(tgts)
		}
		return ditto.ConfigurationInvalid(msg + " are missing an authorization context.")
	}
	if c.ClientCount > 1 {
		for _, t := range c.Targets {
			for _, ft := range t.Topics {
				if ft.Topic == TopicConnectionAnnouncements {
					return ditto.ConfigurationInvalid(fmt.Sprintf(
						"Connection announcements (topic %s) can only be used with client count 1.", TopicConnectionAnnouncements))
				}
			}
		}
	}
	return nil
}

// JavaList renders a collection like AbstractCollection.toString: [a, b].
func JavaList(ss []string) string { return "[" + strings.Join(ss, ", ") + "]" }

// migrateBuilder applies AbstractConnectionBuilder.migrateLegacyConfigurationOnTheFly.
func migrateBuilder(c *Connection, legacy *MappingDefinition) {
	if legacy != nil {
		c.MappingDefinitions["javascript"] = *legacy
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.ReplyTargetEnabled && s.ReplyTarget == nil {
			if c.ConnectionType != TypeMQTT {
				merged := map[string]string{
					"correlation-id": "{{header:correlation-id}}",
					"content-type":   "{{header:content-type}}",
					"reply-to":       "{{header:reply-to}}",
				}
				for k, v := range s.HeaderMapping {
					merged[k] = v
				}
				s.HeaderMapping = merged
				s.ReplyTarget = &ReplyTarget{Address: "{{header:reply-to}}",
					HeaderMapping: map[string]string{
						"correlation-id": "{{header:correlation-id}}",
						"content-type":   "{{header:content-type}}",
					},
					ExpectedResponseTypes: []string{"response", "error"}}
			} else {
				s.ReplyTarget = &ReplyTarget{Address: "{{header:reply-to}}", HeaderMapping: map[string]string{},
					ExpectedResponseTypes: []string{"response", "error"}}
			}
		}
		if legacy != nil {
			s.PayloadMapping = append(s.PayloadMapping, "javascript")
		}
	}
	if legacy != nil {
		for i := range c.Targets {
			c.Targets[i].PayloadMapping = append(c.Targets[i].PayloadMapping, "javascript")
		}
	}
}

// migrateLegacy applies ConnectionMigrationUtil (journal/snapshot reads).
func migrateLegacy(o jv) jv {
	// 1. top-level authorizationContext into sources and targets lacking one
	if ac, ok := get(o, "authorizationContext"); ok && kindOf(ac) == kArray {
		for _, key := range []string{"sources", "targets"} {
			arr, ok := get(o, key)
			if !ok || kindOf(arr) != kArray {
				continue
			}
			n := jarr()
			for _, e := range arrOf(arr) {
				if kindOf(e) != kObject {
					n = append(n, jnull())
					continue
				}
				if !has(e, "authorizationContext") {
					c := objOf(e).Clone()
					c.Set("authorizationContext", ac)
					e = c
				}
				n = append(n, e)
			}
			objOf(o).Set(key, n)
		}
	}
	// 2. source "filters" → enforcement with {{ source:address }}
	if arr, ok := get(o, "sources"); ok && kindOf(arr) == kArray {
		needs := false
		for _, e := range arrOf(arr) {
			if kindOf(e) == kObject && has(e, "filters") {
				needs = true
			}
		}
		if needs {
			n := jarr()
			for _, e := range arrOf(arr) {
				if kindOf(e) != kObject {
					continue
				}
				if f, ok := get(e, "filters"); ok && kindOf(f) == kArray {
					e = objOf(e).Clone()
					objOf(e).Remove("filters")
					objOf(e).Set("enforcement", jobj(jfield{"input", jstr("{{ source:address }}")}, jfield{"filters", f}))
				}
				n = append(n, e)
			}
			objOf(o).Set("sources", n)
		}
	}
	// 3. topic:action|subject → topic:action-subject
	fix := func(s string) string { return strings.ReplaceAll(s, "topic:action|subject", "topic:action-subject") }
	fixHM := func(e jv) jv {
		hm, ok := get(e, "headerMapping")
		if !ok || kindOf(hm) != kObject {
			return e
		}
		n := jobj()
		for k, v := range fields(hm) {
			if kindOf(v) == kString {
				v = jstr(fix(strOf(v)))
			}
			n.Set(k, v)
		}
		e = objOf(e).Clone()
		objOf(e).Set("headerMapping", n)
		return e
	}
	for _, key := range []string{"sources", "targets"} {
		arr, ok := get(o, key)
		if !ok || kindOf(arr) != kArray {
			continue
		}
		n := jarr()
		for _, e := range arrOf(arr) {
			if kindOf(e) != kObject {
				continue
			}
			if key == "targets" {
				if a, ok := get(e, "address"); ok && kindOf(a) == kString && strings.Contains(strOf(a), "topic:action|subject") {
					e = objOf(e).Clone()
					objOf(e).Set("address", jstr(fix(strOf(a))))
				}
			}
			n = append(n, fixHM(e))
		}
		objOf(o).Set(key, n)
	}
	// 4. non-MQTT targets without headerMapping get the legacy default
	if ct, _ := get(o, "connectionType"); !(kindOf(ct) == kString && strOf(ct) == TypeMQTT) {
		if arr, ok := get(o, "targets"); ok && kindOf(arr) == kArray && len(arrOf(arr)) > 0 {
			n := jarr()
			for _, e := range arrOf(arr) {
				if kindOf(e) != kObject {
					continue
				}
				if !has(e, "headerMapping") {
					e = objOf(e).Clone()
					objOf(e).Set("headerMapping", jobj(jfield{"correlation-id", jstr("{{header:correlation-id}}")},
						jfield{"reply-to", jstr("{{header:reply-to}}")}))
				}
				n = append(n, e)
			}
			objOf(o).Set("targets", n)
		}
	}
	return o
}
