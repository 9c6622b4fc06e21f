package model

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// placeholderDef is one Ditto placeholder: a prefix and the names it supports
// (nil = any non-empty name, e.g. header:<name>).
type placeholderDef struct {
	prefix string
	names  []string
	check  func(string) bool
}

func (p placeholderDef) supports(name string) bool {
	if p.check != nil {
		return p.check(name)
	}
	if p.names == nil {
		return name != ""
	}
	for _, n := range p.names {
		if n == name {
			return true
		}
	}
	return false
}

var timeName = regexp.MustCompile(`^now(_epoch_millis)?([+-][0-9]+(ms|s|m|h|d|w|mo|y)|\[(ms|s|m|h|d|w|mo|y)\])*$`)

var (
	phHeader     = placeholderDef{prefix: "header"}
	phThing      = placeholderDef{prefix: "thing", names: []string{"id", "namespace", "name"}}
	phPolicy     = placeholderDef{prefix: "policy", names: []string{"id", "namespace", "name"}}
	phEntity     = placeholderDef{prefix: "entity", names: []string{"id", "namespace", "name"}}
	phFeature    = placeholderDef{prefix: "feature", names: []string{"id"}}
	phThingJSON  = placeholderDef{prefix: "thing-json"}
	phTopic      = placeholderDef{prefix: "topic", names: []string{"full", "namespace", "entityName", "group", "channel", "criterion", "action", "subject", "action-subject"}}
	phResource   = placeholderDef{prefix: "resource", names: []string{"type", "path"}}
	phTime       = placeholderDef{prefix: "time", check: timeName.MatchString}
	phRequest    = placeholderDef{prefix: "request", names: []string{"subjectId"}}
	phConnection = placeholderDef{prefix: "connection", names: []string{"id"}}
	phSource     = placeholderDef{prefix: "source", names: []string{"address"}}
	phMQTT3      = placeholderDef{prefix: "header", names: []string{"mqtt.topic", "mqtt.qos", "mqtt.retain"}}
)

// allPlaceholders is Resolvers.getPlaceholders().
var allPlaceholders = []placeholderDef{phHeader, phEntity, phThing, phThingJSON, phFeature, phTopic, phResource,
	phTime, phRequest, phConnection}

var pipelineFunctions = map[string]bool{"filter": true, "default": true, "substring-before": true,
	"substring-after": true, "lower": true, "upper": true, "trim": true, "url-encode": true, "url-decode": true,
	"base64-encode": true, "base64-decode": true, "delete": true, "replace": true, "split": true, "join": true,
	"format": true}

var placeholderExpr = regexp.MustCompile(`\{\{(.*?)}}`)

func containsPlaceholder(s string) bool { return placeholderExpr.MatchString(s) }

const unresolvedDescription = "Some placeholders could not be resolved. Check the spelling of the placeholder and make sure all required headers are set."

// placeholderErr validates template against the placeholders the way
// PlaceholderFilter.validate does, returning the Ditto exception it throws
// (not yet wrapped).
func placeholderErr(template string, defs ...placeholderDef) *ditto.Error {
	for _, m := range placeholderExpr.FindAllStringSubmatch(template, -1) {
		stages := splitPipeline(m[1])
		first := strings.TrimSpace(stages[0])
		prefix, name, ok := strings.Cut(first, ":")
		if !ok || !anySupports(defs, prefix, name) {
			if !ok || prefix != "fn" {
				return ditto.New(400, ditto.CodePlaceholderUnresolved,
					fmt.Sprintf("The placeholder '%s' could not be resolved.", first), unresolvedDescription)
			}
		}
		for _, st := range stages[1:] {
			st = strings.TrimSpace(st)
			fn, ok := strings.CutPrefix(st, "fn:")
			fname := fn
			if i := strings.IndexByte(fn, '('); i >= 0 {
				fname = fn[:i]
			}
			if !ok || !pipelineFunctions[fname] {
				return ditto.New(400, ditto.CodePlaceholderFuncUnknown,
					fmt.Sprintf("The function <%s> is not known.", st), "")
			}
		}
	}
	return nil
}

func anySupports(defs []placeholderDef, prefix, name string) bool {
	for _, d := range defs {
		if d.prefix == prefix && d.supports(name) {
			return true
		}
	}
	return false
}

// splitPipeline splits at '|' outside quotes and parentheses.
func splitPipeline(s string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// validateTemplate is AbstractProtocolValidator.validateTemplate: placeholder
// errors become connection.configuration.invalid with their message.
func validateTemplate(template string, defs ...placeholderDef) error {
	if e := placeholderErr(template, defs...); e != nil {
		desc := e.Description
		if desc == "" {
			desc = "Check the spelling and syntax of the placeholder."
		}
		return ditto.ConfigurationInvalidDesc(e.Message, desc)
	}
	return nil
}

// replacePlaceholders substitutes every {{...}} with repl (validateTemplateAndReplace).
func replacePlaceholders(template, repl string) string {
	return placeholderExpr.ReplaceAllString(template, repl)
}
