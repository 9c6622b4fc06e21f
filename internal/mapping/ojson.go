package mapping

import (
	"strings"

	"github.com/dittoconn/dittoconn/internal/ojson"
)

// gojson is how the mappers read and write JSON: ordered objects (their
// outputs are compared with Ditto's byte for byte), strings escaped as
// encoding/json does with HTML escaping off, which is what they have always
// written.
const gojson = ojson.GoJSON

// pointerKeys splits a JSON pointer ("/a/b", "a/b", "/") into its keys;
// empty segments from double slashes end the pointer, as in Ditto.
func pointerKeys(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	var keys []string
	for _, k := range strings.Split(p, "/") {
		if k == "" {
			break
		}
		keys = append(keys, k)
	}
	return keys
}
