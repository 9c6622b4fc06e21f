// Package ojson is the service's one order-preserving JSON implementation:
// the ordered object, the parser (a byte scanner with an encoding/json
// fallback), the writer, the string escaper, the nesting bound and the
// byte splicing used to rewrite stored documents in place.
//
// Why not encoding/json with map[string]any: Ditto's JsonObject keeps
// insertion order and many answers are compared with Ditto's byte for byte;
// Ditto's writer also does not HTML-escape '<', '>' and '&'.
//
// A parsed value is a *Object, a []any or a json.RawMessage holding one
// scalar literal (numbers as written, strings already escaped, true, false,
// null). Literals are kept as text so that writing a value back costs a copy,
// not a re-encoding; the data plane parses and writes every message.
//
// Nothing here is safe for concurrent mutation: an Object belongs to one
// goroutine at a time (readers may share one that nobody changes).
package ojson
