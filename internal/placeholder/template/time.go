package template

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// timeSpec is a parsed time:now... name: a base and a list of offsets and
// truncations applied left to right, e.g. "now-1h[h]" or "now_epoch_millis+30s".
type timeSpec struct {
	millis bool
	ops    []timeOp
}

type timeOp struct {
	truncate bool
	sign     int64 // +1 / -1 for an offset
	amount   int64
	unit     string
}

var errTime = errors.New("placeholder: bad time placeholder")

// parseTime accepts Ditto's time placeholder names:
// now(_epoch_millis)?([+-]<n><unit>|[<unit>])*, units ms s m h d w mo y.
func parseTime(name string) (*timeSpec, error) {
	ts := &timeSpec{}
	rest, ok := strings.CutPrefix(name, "now_epoch_millis")
	if ok {
		ts.millis = true
	} else if rest, ok = strings.CutPrefix(name, "now"); !ok {
		return nil, errTime
	}
	for rest != "" {
		switch rest[0] {
		case '+', '-':
			i := 1
			for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
				i++
			}
			if i == 1 {
				return nil, errTime
			}
			n, err := strconv.ParseInt(rest[1:i], 10, 64)
			if err != nil {
				n = math.MaxInt64 // saturates in offset
			}
			unit, tail, ok := cutUnit(rest[i:])
			if !ok {
				return nil, errTime
			}
			sign := int64(1)
			if rest[0] == '-' {
				sign = -1
			}
			ts.ops = append(ts.ops, timeOp{sign: sign, amount: n, unit: unit})
			rest = tail
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, errTime
			}
			unit, tail, ok := cutUnit(rest[1:end])
			if !ok || tail != "" {
				return nil, errTime
			}
			ts.ops = append(ts.ops, timeOp{truncate: true, unit: unit})
			rest = rest[end+1:]
		default:
			return nil, errTime
		}
	}
	return ts, nil
}

// cutUnit reads a unit at the start of s; "ms" and "mo" win over "m".
func cutUnit(s string) (unit, rest string, ok bool) {
	for _, u := range []string{"ms", "mo", "s", "m", "h", "d", "w", "y"} {
		if strings.HasPrefix(s, u) {
			return u, s[len(u):], true
		}
	}
	return "", s, false
}

// Clock is an optional Resolver extension that fixes "now" (tests, or one
// instant for all templates of a message).
type Clock interface {
	Now() time.Time
}

// ResolveTime resolves the name of a time: placeholder at r's Clock (the
// wall clock when r is not one); ok=false for a name that is not one.
func ResolveTime(name string, r Resolver) (string, bool) {
	ts, err := parseTime(name)
	if err != nil {
		return "", false
	}
	return ts.resolve(r), true
}

func (ts *timeSpec) resolve(r Resolver) string {
	now := time.Now()
	if c, ok := r.(Clock); ok {
		now = c.Now()
	}
	t := now.UTC()
	for _, op := range ts.ops {
		if op.truncate {
			t = truncate(t, op.unit)
			continue
		}
		t = offset(t, op.sign*op.amount, op.unit)
	}
	if ts.millis {
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	return ditto.FormatInstant(t)
}

// offset adds n units; w, mo and y are fixed 7, 30 and 365 days, as a
// duration (not a calendar step).
func offset(t time.Time, n int64, unit string) time.Time {
	var d time.Duration
	switch unit {
	case "ms":
		d = time.Millisecond
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	case "d":
		d = 24 * time.Hour
	case "w":
		d = 7 * 24 * time.Hour
	case "mo":
		d = 30 * 24 * time.Hour
	case "y":
		d = 365 * 24 * time.Hour
	}
	if n > math.MaxInt64/int64(d) || n < -math.MaxInt64/int64(d) {
		// beyond ±292 years: saturate instead of wrapping around
		if n > 0 {
			return t.Add(math.MaxInt64)
		}
		return t.Add(math.MinInt64)
	}
	return t.Add(time.Duration(n) * d)
}

// truncate cuts t to the unit in UTC. Java's Instant.truncatedTo refuses
// units above a day; here w, mo and y go to the start of the ISO week
// (Monday), month and year.
func truncate(t time.Time, unit string) time.Time {
	switch unit {
	case "ms":
		return t.Truncate(time.Millisecond)
	case "s":
		return t.Truncate(time.Second)
	case "m":
		return t.Truncate(time.Minute)
	case "h":
		return t.Truncate(time.Hour)
	}
	y, mo, d := t.Date()
	day := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	switch unit {
	case "w":
		wd := (int(day.Weekday()) + 6) % 7 // Monday = 0
		return day.AddDate(0, 0, -wd)
	case "mo":
		return time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
	case "y":
		return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return day
}
