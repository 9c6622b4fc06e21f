package document

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/dittoconn/dittoconn/internal/ojson"
)

// Ditto's key escaping: MongoDB field names must not contain '.' and must not
// start with '$', so Ditto replaces both characters by their full-width forms
// in every object key, on every level.
const (
	dotEscape    = "\uFF0E"
	dollarEscape = "\uFF04"
)

// FromJSON converts a JSON object into a BSON document by Ditto's rules: key
// order kept, '.' and '$' in keys escaped, integral numbers as Int32 when
// they fit, else Int64, anything else as Double.
func FromJSON(js []byte) (bson.Raw, error) {
	return AppendJSON(nil, js)
}

// AppendJSON is FromJSON appending to dst (one allocation for a whole
// journal document).
func AppendJSON(dst, js []byte) ([]byte, error) {
	// Validating first lets the converter below assume well-formed input.
	if !json.Valid(js) {
		return dst, fmt.Errorf("%w: payload is not valid JSON", ErrMalformed)
	}
	if !utf8.Valid(js) {
		return dst, fmt.Errorf("%w: payload is not valid UTF-8", ErrMalformed)
	}
	p := jsonParser{in: js}
	p.space()
	if p.in[p.i] != '{' {
		return dst, fmt.Errorf("%w: payload is not a JSON object", ErrMalformed)
	}
	return p.object(dst)
}

type jsonParser struct {
	in      []byte
	i       int
	scratch []byte // unescaped string, reused
}

func (p *jsonParser) space() {
	for p.i < len(p.in) {
		switch p.in[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// object appends the document starting at p.in[p.i] == '{'.
func (p *jsonParser) object(dst []byte) ([]byte, error) {
	start, dst := bsoncore.AppendDocumentStart(dst)
	p.i++ // '{'
	p.space()
	if p.in[p.i] == '}' {
		p.i++
		return bsoncore.AppendDocumentEnd(dst, start)
	}
	for {
		p.space()
		key := p.str()
		typePos := len(dst)
		dst = append(dst, 0)
		var err error
		if dst, err = appendEscapedKey(dst, key); err != nil {
			return dst, err
		}
		p.space()
		p.i++ // ':'
		p.space()
		var t bsoncore.Type
		if dst, t, err = p.value(dst); err != nil {
			return dst, err
		}
		dst[typePos] = byte(t)
		p.space()
		c := p.in[p.i]
		p.i++
		if c == '}' {
			return bsoncore.AppendDocumentEnd(dst, start)
		}
	}
}

func (p *jsonParser) array(dst []byte) ([]byte, error) {
	start, dst := bsoncore.AppendArrayStart(dst)
	p.i++ // '['
	p.space()
	if p.in[p.i] == ']' {
		p.i++
		return bsoncore.AppendArrayEnd(dst, start)
	}
	for n := 0; ; n++ {
		p.space()
		typePos := len(dst)
		dst = append(dst, 0)
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, 0)
		var t bsoncore.Type
		var err error
		if dst, t, err = p.value(dst); err != nil {
			return dst, err
		}
		dst[typePos] = byte(t)
		p.space()
		c := p.in[p.i]
		p.i++
		if c == ']' {
			return bsoncore.AppendArrayEnd(dst, start)
		}
	}
}

// value appends the value at p.in[p.i] (without element header) and reports
// its BSON type.
func (p *jsonParser) value(dst []byte) ([]byte, bsoncore.Type, error) {
	var err error
	switch c := p.in[p.i]; c {
	case '{':
		dst, err = p.object(dst)
		return dst, bsoncore.TypeEmbeddedDocument, err
	case '[':
		dst, err = p.array(dst)
		return dst, bsoncore.TypeArray, err
	case '"':
		s := p.str()
		dst = bsoncore.AppendInt32(dst, int32(len(s)+1))
		dst = append(dst, s...)
		return append(dst, 0), bsoncore.TypeString, nil
	case 't':
		p.i += len("true")
		return bsoncore.AppendBoolean(dst, true), bsoncore.TypeBoolean, nil
	case 'f':
		p.i += len("false")
		return bsoncore.AppendBoolean(dst, false), bsoncore.TypeBoolean, nil
	case 'n':
		p.i += len("null")
		return dst, bsoncore.TypeNull, nil
	default:
		start := p.i
		for p.i < len(p.in) {
			switch p.in[p.i] {
			case '-', '+', '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				p.i++
				continue
			}
			break
		}
		return appendNumber(dst, p.in[start:p.i])
	}
}

// appendNumber classifies a JSON number by its value, as Ditto's mapper does:
// an integral value in int32 range is Int32, in int64 range Int64, and
// everything else (fractions, huge integers) Double. So 1.0 and 1e3 are
// integers; 1.5 is a Double.
func appendNumber(dst, lit []byte) ([]byte, bsoncore.Type, error) {
	isInt := true
	for _, c := range lit {
		if c == '.' || c == 'e' || c == 'E' {
			isInt = false
			break
		}
	}
	if isInt {
		if n, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
			return appendInteger(dst, n)
		}
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil && !isRangeErr(err) {
		return dst, 0, fmt.Errorf("%w: number %q: %v", ErrMalformed, lit, err)
	}
	if math.IsInf(f, 0) {
		return dst, 0, fmt.Errorf("%w: number %q out of range", ErrMalformed, lit)
	}
	// -2^63 is exact in float64; 2^63 is the first value beyond int64.
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return appendInteger(dst, int64(f))
	}
	return bsoncore.AppendDouble(dst, f), bsoncore.TypeDouble, nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func appendInteger(dst []byte, n int64) ([]byte, bsoncore.Type, error) {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		return bsoncore.AppendInt32(dst, int32(n)), bsoncore.TypeInt32, nil
	}
	return bsoncore.AppendInt64(dst, n), bsoncore.TypeInt64, nil
}

// str reads the string at p.in[p.i] == '"' and returns its unescaped bytes,
// valid until the next call.
func (p *jsonParser) str() []byte {
	p.i++ // '"'
	start := p.i
	for p.in[p.i] != '"' && p.in[p.i] != '\\' {
		p.i++
	}
	if p.in[p.i] == '"' { // no escapes: the common case, no copy
		p.i++
		return p.in[start : p.i-1]
	}
	out := append(p.scratch[:0], p.in[start:p.i]...)
	for {
		c := p.in[p.i]
		switch c {
		case '"':
			p.i++
			p.scratch = out
			return out
		case '\\':
			e := p.in[p.i+1]
			p.i += 2
			switch e {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := p.hex4()
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if p.i+1 < len(p.in) && p.in[p.i] == '\\' && p.in[p.i+1] == 'u' {
						save := p.i
						p.i += 2
						r2 = p.hex4()
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							r = d
						} else {
							p.i = save // not a pair: keep the second escape for the next round
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default: // '"', '\\', '/'
				out = append(out, e)
			}
		default:
			out = append(out, c)
			p.i++
		}
	}
}

func (p *jsonParser) hex4() rune {
	var r rune
	for _, c := range p.in[p.i : p.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	p.i += 4
	return r
}

func appendEscapedKey(dst, key []byte) ([]byte, error) {
	for _, c := range key {
		switch c {
		case '.':
			dst = append(dst, dotEscape...)
		case '$':
			dst = append(dst, dollarEscape...)
		case 0:
			return dst, fmt.Errorf("%w: object key %q contains NUL", ErrMalformed, key)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, 0), nil
}

// ToJSON converts a BSON document written by FromJSON (or by Ditto) back into
// compact JSON: key order kept, key escapes reversed, Int32/Int64 as integers,
// Double in the shortest form that reads back to the same value. Types that
// JSON lacks (ObjectId, dates, binary, ...) never occur in Ditto's payloads;
// they come out as extended JSON rather than failing a whole recovery.
func ToJSON(doc bson.Raw) (json.RawMessage, error) {
	return AppendBSON(nil, doc)
}

// AppendBSON is ToJSON appending to dst.
func AppendBSON(dst []byte, doc bson.Raw) ([]byte, error) {
	return appendDocJSON(dst, bsoncore.Document(doc), false)
}

func appendDocJSON(dst []byte, doc bsoncore.Document, array bool) ([]byte, error) {
	elems, err := doc.Elements()
	if err != nil {
		return dst, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	open, closing := byte('{'), byte('}')
	if array {
		open, closing = '[', ']'
	}
	dst = append(dst, open)
	for i, e := range elems {
		if i > 0 {
			dst = append(dst, ',')
		}
		if !array {
			dst = ojson.Ditto.AppendString(dst, unescapeKey(e.Key()))
			dst = append(dst, ':')
		}
		if dst, err = appendValueJSON(dst, e.Value()); err != nil {
			return dst, err
		}
	}
	return append(dst, closing), nil
}

func appendValueJSON(dst []byte, v bsoncore.Value) ([]byte, error) {
	switch v.Type {
	case bsoncore.TypeEmbeddedDocument:
		return appendDocJSON(dst, v.Document(), false)
	case bsoncore.TypeArray:
		return appendDocJSON(dst, bsoncore.Document(v.Array()), true)
	case bsoncore.TypeString:
		return ojson.Ditto.AppendString(dst, v.StringValue()), nil
	case bsoncore.TypeInt32:
		return strconv.AppendInt(dst, int64(v.Int32()), 10), nil
	case bsoncore.TypeInt64:
		return strconv.AppendInt(dst, v.Int64(), 10), nil
	case bsoncore.TypeDouble:
		return appendFloat(dst, v.Double())
	case bsoncore.TypeBoolean:
		return strconv.AppendBool(dst, v.Boolean()), nil
	case bsoncore.TypeNull, bsoncore.TypeUndefined:
		return append(dst, "null"...), nil
	default:
		if err := v.Validate(); err != nil {
			return dst, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return append(dst, v.String()...), nil
	}
}

// appendFloat formats like encoding/json: shortest round-trip digits, and
// exponent form only for very small or very large magnitudes.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, fmt.Errorf("%w: %v has no JSON form", ErrMalformed, f)
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' { // 1e-07 → 1e-7
		b := dst[start:]
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst, nil
}

func unescapeKey(k string) string {
	// Both escapes start with 0xEF; most keys have no such byte.
	for i := 0; i < len(k); i++ {
		if k[i] == 0xEF {
			return keyUnescaper(k)
		}
	}
	return k
}

func keyUnescaper(k string) string {
	out := make([]byte, 0, len(k))
	for i := 0; i < len(k); {
		switch {
		case len(k)-i >= 3 && k[i:i+3] == dotEscape:
			out = append(out, '.')
			i += 3
		case len(k)-i >= 3 && k[i:i+3] == dollarEscape:
			out = append(out, '$')
			i += 3
		default:
			out = append(out, k[i])
			i++
		}
	}
	return string(out)
}
