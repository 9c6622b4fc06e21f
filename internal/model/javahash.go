package model

import (
	"sort"
	"unicode/utf16"
)

// Ditto keeps specificConfig, header mappings, mapping definitions and
// conditions in java.util.HashMap and serialises them in that map's iteration
// order. To write byte-identical JSON we reproduce that order: buckets by
// (String.hashCode spread) & (capacity-1), ties by the bucket of the source map
// and then by input order.

func javaStringHash(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

func javaSpread(h int32) uint32 {
	u := uint32(h)
	return u ^ (u >> 16)
}

func tableSizeFor(c int) int {
	n := 1
	for n < c {
		n <<= 1
	}
	return n
}

// copyCapacity is the table size of new HashMap<>(m) for a map of size n.
func copyCapacity(n int) int {
	return tableSizeFor(int(float32(n)/0.75 + 1))
}

// growCapacity is the table size of a HashMap filled by put from empty.
func growCapacity(n int) int {
	c := 16
	for float64(n) > float64(c)*0.75 {
		c <<= 1
	}
	return c
}

// JavaHashOrder orders keys (given in input order, unique) as a HashMap copy
// of a HashMap filled from that input iterates them.
func JavaHashOrder(keys []string) []string {
	n := len(keys)
	out := append([]string(nil), keys...)
	if n < 2 {
		return out
	}
	capFinal := uint32(copyCapacity(n))
	capSrc := uint32(growCapacity(n))
	idx := make(map[string]int, n)
	for i, k := range keys {
		idx[k] = i
	}
	sort.SliceStable(out, func(i, j int) bool {
		hi, hj := javaSpread(javaStringHash(out[i])), javaSpread(javaStringHash(out[j]))
		if bi, bj := hi&(capFinal-1), hj&(capFinal-1); bi != bj {
			return bi < bj
		}
		if bi, bj := hi&(capSrc-1), hj&(capSrc-1); bi != bj {
			return bi < bj
		}
		return idx[out[i]] < idx[out[j]]
	})
	return out
}

// HashMapKeys returns the keys of m in Java HashMap order (input order
// approximated by sorted order, which only matters for bucket collisions).
func HashMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return JavaHashOrder(keys)
}
