package ojson

import (
	"cmp"
	"slices"
)

// Edit replaces B[Start:End] of a document with Repl.
type Edit struct {
	Start, End int
	Repl       []byte
}

// Delta is how much the edit changes the document's length.
func (e Edit) Delta() int { return len(e.Repl) - (e.End - e.Start) }

// Splice applies non-overlapping edits to b into a new slice, every other
// byte kept; edits are sorted by Start first. The in-place rewrites of
// stored documents (encrypted fields in JSON, the migration in BSON) use it
// so that key order, numbers and untouched values stay exactly as stored.
func Splice(b []byte, edits []Edit) []byte {
	slices.SortFunc(edits, func(a, b Edit) int { return cmp.Compare(a.Start, b.Start) })
	size := len(b)
	for _, e := range edits {
		size += e.Delta()
	}
	out := make([]byte, 0, size)
	pos := 0
	for _, e := range edits {
		out = append(out, b[pos:e.Start]...)
		out = append(out, e.Repl...)
		pos = e.End
	}
	return append(out, b[pos:]...)
}
