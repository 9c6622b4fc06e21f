package model

import (
	"encoding/json"
	"strings"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// JSON serialises in Ditto's field order (AbstractConnection.toJson). The
// hidden fields __lifecycle, _revision, _modified and _created are written
// only when withHidden (events and snapshots carry them, a GET does not).
func (c *Connection) JSON(withHidden bool) []byte {
	return ojson.Ditto.Marshal(c.toJV(withHidden))
}

func (c *Connection) toJV(withHidden bool) jv {
	o := jobj()
	add := o.Set
	if withHidden && c.Lifecycle != "" {
		add("__lifecycle", jstr(c.Lifecycle))
	}
	add("id", jstr(c.ID))
	if c.Name != nil {
		add("name", jstr(*c.Name))
	} else {
		add("name", jnull())
	}
	if withHidden {
		if c.Revision != 0 {
			add("_revision", jint(c.Revision))
		}
		if c.Modified != "" {
			add("_modified", jstr(c.Modified))
		}
		if c.Created != "" {
			add("_created", jstr(c.Created))
		}
	}
	add("connectionType", jstr(c.ConnectionType))
	add("connectionStatus", jstr(c.ConnectionStatus))
	add("uri", jstr(c.URI))
	srcs := jarr()
	for _, s := range sortedSources(c.Sources) {
		srcs = append(srcs, s.toJV())
	}
	add("sources", srcs)
	tgts := jarr()
	for _, t := range c.Targets {
		tgts = append(tgts, t.toJV())
	}
	add("targets", tgts)
	add("clientCount", jint(int64(c.ClientCount)))
	add("failoverEnabled", jbool(c.FailoverEnabled))
	add("validateCertificates", jbool(c.ValidateCertificates))
	add("processorPoolSize", jint(int64(c.ProcessorPoolSize)))
	if len(c.SpecificConfig) > 0 {
		add("specificConfig", mapJV(c.SpecificConfig))
	}
	if len(c.MappingDefinitions) > 0 {
		md := jobj()
		for _, k := range HashMapKeys(c.MappingDefinitions) {
			md.Set(k, c.MappingDefinitions[k].toJV())
		}
		add("mappingDefinitions", md)
	}
	if c.Credentials != nil {
		add("credentials", c.Credentials.toJV())
	}
	if strings.TrimSpace(c.CA) != "" {
		add("ca", jstr(c.CA))
	}
	if c.SSHTunnel != nil {
		t := c.SSHTunnel
		add("sshTunnel", jobj(jfield{"enabled", jbool(t.Enabled)}, jfield{"credentials", t.Credentials.toJV()},
			jfield{"validateHost", jbool(t.ValidateHost)}, jfield{"knownHosts", jarrStr(t.KnownHosts)},
			jfield{"uri", jstr(t.URI)}))
	}
	add("tags", jarrStr(c.Tags))
	return o
}

// mapJV writes a string map in Java HashMap order.
func mapJV(m map[string]string) jv {
	o := jobj()
	for _, k := range HashMapKeys(m) {
		o.Set(k, jstr(m[k]))
	}
	return o
}

func rawJV(r json.RawMessage) jv {
	if len(r) == 0 {
		return jobj()
	}
	v, err := parseJSON(r)
	if err != nil {
		return jobj()
	}
	return v
}

func (s Source) toJV() jv {
	o := jobj(jfield{"addresses", jarrStr(s.Addresses)}, jfield{"consumerCount", jint(int64(s.ConsumerCount))})
	add := o.Set
	if s.QoS != nil {
		add("qos", jint(int64(*s.QoS)))
	}
	if len(s.AuthorizationContext) > 0 {
		add("authorizationContext", jarrStr(s.AuthorizationContext))
	}
	if s.Enforcement != nil {
		add("enforcement", jobj(jfield{"input", jstr(s.Enforcement.Input)},
			jfield{"filters", jarrStr(s.Enforcement.Filters)}))
	}
	if s.AcknowledgementRequests != nil {
		// includes is a HashSet in Ditto
		a := jobj(jfield{"includes", jarrStr(JavaHashOrder(s.AcknowledgementRequests.Includes))})
		if s.AcknowledgementRequests.Filter != nil {
			a.Set("filter", jstr(*s.AcknowledgementRequests.Filter))
		}
		add("acknowledgementRequests", a)
	}
	add("headerMapping", mapJV(s.HeaderMapping))
	if len(s.PayloadMapping) > 0 {
		add("payloadMapping", jarrStr(s.PayloadMapping))
	}
	if s.ReplyTarget != nil {
		rt := jobj(jfield{"address", jstr(s.ReplyTarget.Address)},
			jfield{"headerMapping", mapJV(s.ReplyTarget.HeaderMapping)},
			jfield{"expectedResponseTypes", jarrStr(s.ReplyTarget.ExpectedResponseTypes)},
			jfield{"enabled", jbool(s.ReplyTargetEnabled)})
		add("replyTarget", rt)
	} else if !s.ReplyTargetEnabled {
		add("replyTarget", jobj(jfield{"enabled", jbool(false)}))
	}
	if len(s.DeclaredAcks) > 0 {
		add("declaredAcks", jarrStr(s.DeclaredAcks))
	}
	return o
}

func (t Target) toJV() jv {
	topics := make([]string, 0, len(t.Topics))
	for _, ft := range t.Topics {
		topics = append(topics, ft.String())
	}
	o := jobj(jfield{"address", jstr(t.Address)}, jfield{"topics", jarrStr(topics)})
	add := o.Set
	if t.QoS != nil {
		add("qos", jint(int64(*t.QoS)))
	}
	if len(t.AuthorizationContext) > 0 {
		add("authorizationContext", jarrStr(t.AuthorizationContext))
	}
	if t.IssuedAcknowledgementLabel != "" {
		add("issuedAcknowledgementLabel", jstr(t.IssuedAcknowledgementLabel))
	}
	add("headerMapping", mapJV(t.HeaderMapping))
	if len(t.PayloadMapping) > 0 {
		add("payloadMapping", jarrStr(t.PayloadMapping))
	}
	return o
}

func (d MappingDefinition) toJV() jv {
	o := jobj(jfield{"mappingEngine", jstr(d.MappingEngine)}, jfield{"options", rawJV(d.Options)})
	if len(d.IncomingConditions) > 0 {
		o.Set("incomingConditions", mapJV(d.IncomingConditions))
	}
	if len(d.OutgoingConditions) > 0 {
		o.Set("outgoingConditions", mapJV(d.OutgoingConditions))
	}
	return o
}

func (c Credentials) toJV() jv {
	o := jobj(jfield{"type", jstr(c.Type)})
	add := o.Set
	opt := func(k string, p *string) {
		if p != nil {
			add(k, jstr(*p))
		}
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch c.Type {
	case "client-cert":
		opt("cert", c.Cert)
		opt("key", c.Key)
	case "hmac":
		add("algorithm", jstr(c.Algorithm))
		add("parameters", rawJV(c.Parameters))
	case "oauth-client-credentials", "oauth-password":
		opt("tokenEndpoint", c.TokenEndpoint)
		opt("clientId", c.ClientID)
		opt("clientSecret", c.ClientSecret)
		opt("requestedScopes", c.RequestedScopes)
		if c.Type == "oauth-client-credentials" {
			// OAuthClientCredentials writes audience even when null.
			if c.Audience != nil {
				add("audience", jstr(*c.Audience))
			} else {
				add("audience", jnull())
			}
		} else {
			opt("audience", c.Audience)
			opt("username", c.Username)
			opt("password", c.Password)
		}
	case "plain":
		add("username", jstr(str(c.Username)))
		add("password", jstr(str(c.Password)))
	case "public-key":
		add("username", jstr(str(c.Username)))
		add("publicKey", jstr(c.PublicKey))
		add("privateKey", jstr(c.PrivateKey))
	}
	return o
}

// Select applies a Ditto field selector (JsonObject.get(JsonFieldSelector)) to
// the connection JSON including hidden fields: only selected fields appear,
// in selector order; arrays are descended element-wise.
func (c *Connection) Select(selector string) ([]byte, error) {
	pointers, err := parseFieldSelector(selector)
	if err != nil {
		return nil, err
	}
	full := c.toJV(true)
	if len(pointers) == 0 {
		return ojson.Ditto.Marshal(c.toJV(false)), nil
	}
	return ojson.Ditto.Marshal(selectJV(full, pointers)), nil
}

// parseFieldSelector expands "a,b(c,d/e),f/g" into pointers as
// JsonFactory.newFieldSelector does; unbalanced parentheses are invalid.
func parseFieldSelector(sel string) ([][]string, error) {
	depth := 0
	for _, r := range sel {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return nil, ditto.FieldSelectorInvalid(sel)
			}
		}
	}
	if depth != 0 {
		return nil, ditto.FieldSelectorInvalid(sel)
	}
	var out [][]string
	var expand func(prefix []string, s string) error
	expand = func(prefix []string, s string) error {
		for _, part := range splitTopLevel(s) {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if i := strings.IndexByte(part, '('); i >= 0 {
				if !strings.HasSuffix(part, ")") {
					return ditto.FieldSelectorInvalid(sel)
				}
				head := append(append([]string{}, prefix...), splitPointer(part[:i])...)
				if err := expand(head, part[i+1:len(part)-1]); err != nil {
					return err
				}
				continue
			}
			p := append(append([]string{}, prefix...), splitPointer(part)...)
			if len(p) > 0 {
				out = append(out, p)
			}
		}
		return nil
	}
	if err := expand(nil, sel); err != nil {
		return nil, err
	}
	return out, nil
}

func splitTopLevel(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func splitPointer(p string) []string {
	var out []string
	for _, k := range strings.Split(p, "/") {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

// trie of selected keys, in insertion order (JsonFieldSelectorTrie).
type trie struct {
	keys     []string
	children map[string]*trie
}

func (t *trie) add(p []string) {
	if len(p) == 0 {
		return
	}
	if t.children == nil {
		t.children = map[string]*trie{}
	}
	ch, ok := t.children[p[0]]
	if !ok {
		ch = &trie{}
		t.children[p[0]] = ch
		t.keys = append(t.keys, p[0])
	}
	ch.add(p[1:])
}

// contains reports whether the pointer exists, looking into arrays.
func contains(v jv, p []string) bool {
	if len(p) == 0 {
		return true
	}
	switch kindOf(v) {
	case kObject:
		ch, ok := get(v, p[0])
		return ok && contains(ch, p[1:])
	case kArray:
		for _, e := range arrOf(v) {
			if contains(e, p) {
				return true
			}
		}
	}
	return false
}

func selectJV(o jv, pointers [][]string) jv {
	t := &trie{}
	for _, p := range pointers {
		if contains(o, p) {
			t.add(p)
		}
	}
	if len(t.keys) == 0 {
		return jobj()
	}
	return filterTrie(o, t)
}

func filterTrie(o jv, t *trie) jv {
	if len(t.keys) == 0 {
		return o
	}
	out := jobj()
	for _, k := range t.keys {
		v, ok := get(o, k)
		if !ok {
			continue
		}
		sub := t.children[k]
		switch kindOf(v) {
		case kObject:
			v = filterTrie(v, sub)
		case kArray:
			n := jarr()
			for _, e := range arrOf(v) {
				if kindOf(e) == kObject {
					e = filterTrie(e, sub)
				}
				n = append(n, e)
			}
			v = n
		}
		out.Set(k, v)
	}
	return out
}
