package ditto

import (
	"fmt"
	"time"
)

// FormatInstant writes t as Java's Instant.toString does (Ditto's timestamps):
// UTC, and the fraction in groups of three digits, left out when zero.
func FormatInstant(t time.Time) string {
	t = t.UTC()
	base := t.Format("2006-01-02T15:04:05")
	ns := t.Nanosecond()
	switch {
	case ns == 0:
		return base + "Z"
	case ns%1_000_000 == 0:
		return fmt.Sprintf("%s.%03dZ", base, ns/1_000_000)
	case ns%1_000 == 0:
		return fmt.Sprintf("%s.%06dZ", base, ns/1_000)
	default:
		return fmt.Sprintf("%s.%09dZ", base, ns)
	}
}

// ParseInstant reads an ISO-8601 instant as Ditto writes it.
func ParseInstant(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}
