// Package placeholder binds the service's placeholder engine
// (internal/placeholder/template) to Ditto Protocol messages: Values resolves
// header:, thing:, topic:, feature: and the other placeholders of one
// message on one connection. The engine itself lives in the template
// subpackage so that the connection model's validation, which the protocol
// package depends on, compiles templates with the same parser.
package placeholder

import "github.com/dittoconn/dittoconn/internal/placeholder/template"

// Template is a compiled template (see template.Template).
type Template = template.Template

// Resolver supplies placeholder values (see template.Resolver).
type Resolver = template.Resolver

// Compile parses a template with every placeholder the service resolves.
func Compile(s string) (*Template, error) { return template.Compile(s) }
