package bridge

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

// refDurationPattern and refParseDittoDuration are the regular-expression
// parser parseDittoDuration replaced, kept as the reference it must agree
// with on every input.
var refDurationPattern = regexp.MustCompile(`^([+-]?\d+)(ms|s|m|h|d)?$`)

func refParseDittoDuration(s string) (time.Duration, bool) {
	m := refDurationPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	unit := map[string]time.Duration{"": time.Second, "s": time.Second, "ms": time.Millisecond,
		"m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	if n > int64(MaxTimeout/unit)+1 {
		return MaxTimeout + unit, true
	}
	return time.Duration(n) * unit, true
}

var durationCases = []string{
	"", "0", "+0", "-0", "-0s", "-000ms", "00", "007s", "1", "10s", "500ms", "1m", "1h", "1d", "42", "+42", "-1", "-1s",
	"60", "61", "62", "59999ms", "60000ms", "60001ms", "60002ms", "1000000ms", "2m", "24h", "99999999999999999h",
	"9223372036854775807", "9223372036854775808", "9223372036854775807ms", "9223372036854775807d",
	"-9223372036854775808", "-9223372036854775809", "18446744073709551616", "0000000000000000000000000001s",
	"1.5s", "1 s", " 1s", "1s ", "1s\n", "1S", "1M", "1sm", "1mss", "1ms ", "ms", "s", "+", "-", "+-1", "--1",
	"1w", "1mo", "1y", "1us", "1ns", "soon", "١", "1\x00", "\xff1s", "1\xff",
}

// TestParseDittoDurationMatchesReference: the hand-written parser gives the
// reference's result on the boundary cases.
func TestParseDittoDurationMatchesReference(t *testing.T) {
	for _, s := range durationCases {
		gd, gok := parseDittoDuration(s)
		wd, wok := refParseDittoDuration(s)
		if gd != wd || gok != wok {
			t.Errorf("%q: %v %v, reference %v %v", s, gd, gok, wd, wok)
		}
	}
}

// FuzzParseDittoDuration: the hand-written parser agrees with the
// regular-expression reference on any input.
func FuzzParseDittoDuration(f *testing.F) {
	for _, s := range durationCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gd, gok := parseDittoDuration(s)
		wd, wok := refParseDittoDuration(s)
		if gd != wd || gok != wok {
			t.Fatalf("%q: %v %v, reference %v %v", s, gd, gok, wd, wok)
		}
	})
}

var benchDuration time.Duration

// BenchmarkParseDittoDuration compares the reference and the hand-written
// parser on a typical timeout header value.
func BenchmarkParseDittoDuration(b *testing.B) {
	for _, impl := range []struct {
		name  string
		parse func(string) (time.Duration, bool)
	}{{"regexp", refParseDittoDuration}, {"scan", parseDittoDuration}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, _ := impl.parse("10s")
				benchDuration += d
			}
		})
	}
}
