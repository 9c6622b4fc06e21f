// Package rql parses Ditto's RQL filter syntax (org.eclipse.ditto.rql.parser)
// into an AST. The grammar is a PEG: alternatives are tried in order and a
// matched alternative is not revisited, which this recursive-descent parser
// mirrors so that exactly the strings Ditto accepts are accepted.
package rql

import (
	"fmt"
	"strconv"
	"strings"
)

// Node is an RQL AST node: *Comparison, *Multi, *Logical, *Exists or *Empty.
type Node interface{ rqlNode() }

// Comparison is eq/ne/gt/ge/lt/le/like/ilike(property,value).
type Comparison struct {
	Op       string
	Property string
	Value    any // string, int64, float64, bool, nil, or Placeholder
}

// Multi is in(property,v1,v2,...).
type Multi struct {
	Op       string // "in"
	Property string
	Values   []any
}

// Logical is and(...), or(...) or not(x).
type Logical struct {
	Op       string // "and", "or", "not"
	Children []Node
}

// Exists is exists(property).
type Exists struct{ Property string }

// Empty is empty(property).
type Empty struct{ Property string }

// Placeholder is an unquoted time:... literal.
type Placeholder struct{ Name string }

func (*Comparison) rqlNode() {}
func (*Multi) rqlNode()      {}
func (*Logical) rqlNode()    {}
func (*Exists) rqlNode()     {}
func (*Empty) rqlNode()      {}

// Error is a parse failure with the (0-based) byte offset where it occurred.
type Error struct {
	Pos   int
	Input string
}

func (e *Error) Error() string {
	c := "EOI"
	if e.Pos < len(e.Input) {
		c = "'" + string(e.Input[e.Pos]) + "'"
	}
	return fmt.Sprintf("Invalid input %s, expected ... (line 1, column %d):\n%s\n%s^",
		c, e.Pos+1, e.Input, strings.Repeat(" ", e.Pos))
}

type parser struct {
	in    string
	pos   int
	far   int // furthest failure position, for the error
	depth int
}

func (p *parser) fail(at int) bool {
	if at > p.far {
		p.far = at
	}
	return false
}

// Parse parses a complete RQL predicate.
func Parse(s string) (Node, error) {
	p := &parser{in: s}
	p.ws()
	n, ok := p.query()
	if ok {
		if p.pos == len(p.in) {
			return n, nil
		}
		p.fail(p.pos)
	}
	return nil, &Error{Pos: p.far, Input: s}
}

func (p *parser) ws() {
	for p.pos < len(p.in) && strings.IndexByte(" \n\r\t\f", p.in[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *parser) lit(s string) bool {
	if strings.HasPrefix(p.in[p.pos:], s) {
		p.pos += len(s)
		return true
	}
	return p.fail(p.pos)
}

func (p *parser) char(c byte) bool {
	if p.pos < len(p.in) && p.in[p.pos] == c {
		p.pos++
		return true
	}
	return p.fail(p.pos)
}

var singleOps = []string{"eq", "ne", "gt", "ge", "lt", "le", "like", "ilike"}

func (p *parser) query() (Node, bool) {
	if p.depth > 200 {
		return nil, p.fail(p.pos)
	}
	p.depth++
	defer func() { p.depth-- }()
	start := p.pos
	// SingleComparisonOp
	for _, op := range singleOps {
		p.pos = start
		if !p.lit(op) {
			continue
		}
		// the name matched: this alternative is committed to its sequence
		if p.char('(') {
			prop := p.property()
			if p.char(',') {
				if v, ok := p.literal(); ok && p.char(')') {
					return &Comparison{Op: op, Property: prop, Value: v}, true
				}
			}
		}
		break
	}
	// MultiComparisonOp
	p.pos = start
	if p.lit("in") && p.char('(') {
		prop := p.property()
		var vals []any
		for p.char(',') {
			v, ok := p.literal()
			if !ok {
				break
			}
			vals = append(vals, v)
		}
		if len(vals) > 0 && p.char(')') {
			return &Multi{Op: "in", Property: prop, Values: vals}, true
		}
	}
	// MultiLogicalOp
	for _, op := range []string{"and", "or"} {
		p.pos = start
		if p.lit(op) && p.char('(') {
			var kids []Node
			for {
				save := p.pos
				if len(kids) > 0 {
					// separatedBy(ws(',')): a separator not followed by a query is not consumed
					if !p.char(',') {
						break
					}
					p.ws()
				}
				n, ok := p.query()
				if !ok {
					p.pos = save
					break
				}
				kids = append(kids, n)
			}
			if len(kids) > 0 && p.char(')') {
				return &Logical{Op: op, Children: kids}, true
			}
		}
	}
	// SingleLogicalOp
	p.pos = start
	if p.lit("not") && p.char('(') {
		if n, ok := p.query(); ok && p.char(')') {
			return &Logical{Op: "not", Children: []Node{n}}, true
		}
	}
	// ExistsOp / EmptyOp
	p.pos = start
	if p.lit("exists") && p.char('(') {
		prop := p.property()
		if p.char(')') {
			return &Exists{Property: prop}, true
		}
	}
	p.pos = start
	if p.lit("empty") && p.char('(') {
		prop := p.property()
		if p.char(')') {
			return &Empty{Property: prop}, true
		}
	}
	p.pos = start
	return nil, false
}

// property reads Characters: anything but , ) " \ unless escaped.
func (p *parser) property() string {
	var b strings.Builder
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '\\' {
			save := p.pos
			p.pos++
			if !p.escaped(&b, '"') {
				p.pos = save
				break
			}
			continue
		}
		if strings.IndexByte(",)\"\\", c) >= 0 {
			break
		}
		b.WriteByte(c)
		p.pos++
	}
	return b.String()
}

// escaped reads the char after a backslash; quote is the quote char that may be escaped.
func (p *parser) escaped(b *strings.Builder, quote byte) bool {
	if p.pos >= len(p.in) {
		return p.fail(p.pos)
	}
	c := p.in[p.pos]
	switch c {
	case quote, '\\', '/':
		b.WriteByte(c)
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'u':
		if p.pos+5 > len(p.in) {
			return p.fail(p.pos)
		}
		code, err := strconv.ParseUint(p.in[p.pos+1:p.pos+5], 16, 16)
		if err != nil || strings.ContainsAny(p.in[p.pos+1:p.pos+5], "+-") {
			return p.fail(p.pos)
		}
		b.WriteRune(rune(code))
		p.pos += 5
		return true
	default:
		return p.fail(p.pos)
	}
	p.pos++
	return true
}

// integer matches optional sign then (1-9 digits* | digit).
func (p *parser) integer() bool {
	if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
		p.pos++
	}
	if p.pos < len(p.in) && p.in[p.pos] >= '1' && p.in[p.pos] <= '9' {
		p.pos++
		for p.pos < len(p.in) && isDigit(p.in[p.pos]) {
			p.pos++
		}
		return true
	}
	if p.pos < len(p.in) && isDigit(p.in[p.pos]) {
		p.pos++
		return true
	}
	return p.fail(p.pos)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *parser) literal() (any, bool) {
	start := p.pos
	var v any
	matched := false
	// DoubleLiteral
	if p.integer() && p.char('.') {
		ds := p.pos
		for p.pos < len(p.in) && isDigit(p.in[p.pos]) {
			p.pos++
		}
		if p.pos > ds {
			f, _ := strconv.ParseFloat(p.in[start:p.pos], 64)
			v, matched = f, true
		} else {
			p.fail(p.pos)
		}
	}
	// LongLiteral (not "-0")
	if !matched {
		p.pos = start
		if !strings.HasPrefix(p.in[start:], "-0") && p.integer() {
			i, err := strconv.ParseInt(p.in[start:p.pos], 10, 64)
			if err != nil {
				// Long.valueOf overflow fails the whole parse in Ditto
				return nil, p.fail(start)
			}
			v, matched = i, true
		}
	}
	// String literals
	for _, q := range []byte{'"', '\''} {
		if matched {
			break
		}
		p.pos = start
		if p.char(q) {
			var b strings.Builder
			ok := true
			for {
				if p.pos >= len(p.in) {
					ok = p.fail(p.pos)
					break
				}
				c := p.in[p.pos]
				if c == q {
					p.pos++
					break
				}
				if c == '\\' {
					p.pos++
					if !p.escaped(&b, q) {
						ok = false
						break
					}
					continue
				}
				b.WriteByte(c)
				p.pos++
			}
			if ok {
				v, matched = b.String(), true
			}
		}
	}
	// PlaceholderLiteral
	if !matched {
		p.pos = start
		if p.lit("time:") {
			name := p.property()
			v, matched = Placeholder{Name: "time:" + name}, true
		}
	}
	for _, kw := range []struct {
		s string
		v any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if matched {
			break
		}
		p.pos = start
		if p.lit(kw.s) {
			v, matched = kw.v, true
		}
	}
	if !matched {
		p.pos = start
		return nil, false
	}
	p.ws()
	return v, true
}
