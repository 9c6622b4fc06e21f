package gateway

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

const (
	// defaultTimeout is Ditto's ask timeout when no timeout header is given.
	defaultTimeout = ditto.DefaultAskTimeout
	// maxTimeout is ditto.gateway.command.max-timeout.
	maxTimeout = 60 * time.Second
)

// dittoUnit is one suffix of a Ditto duration ("10s", "500ms", "1m", "10").
type dittoUnit struct {
	suffix string
	millis int64
}

// dittoUnits are tried in Ditto's order; the empty suffix means seconds.
// Months and years use Java's ChronoUnit estimates (365.2425 days a year).
var dittoUnits = []dittoUnit{
	{"s", 1000},
	{"", 1000},
	{"ms", 1},
	{"m", 60 * 1000},
	{"h", 3600 * 1000},
	{"d", 86400 * 1000},
	{"w", 7 * 86400 * 1000},
	{"mo", 31556952 * 1000 / 12},
	{"y", 31556952 * 1000},
}

// parseTimeout parses a Ditto duration and checks it against 0..maxTimeout.
// Errors are the ones Ditto sends: timeout.invalid for text that is no
// duration, gateway:timeout.invalid for one outside the bounds.
func parseTimeout(s string) (time.Duration, *ditto.Error) {
	amountText, unit := s, dittoUnit{"", 1000}
	for _, u := range dittoUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok && isSignedDigits(rest) {
			amountText, unit = rest, u
			break
		}
	}
	amount, err := strconv.ParseInt(amountText, 10, 64)
	if err != nil || !isSignedDigits(amountText) {
		// The words of Java's NumberFormatException, which Ditto passes on.
		return 0, ditto.TimeoutValueInvalid(fmt.Sprintf("For input string: %q", amountText))
	}
	if amount < 0 {
		return 0, ditto.TimeoutValueInvalid(
			fmt.Sprintf("The duration must not be negative but was <%s%s>!", amountText, unit.suffix))
	}
	millis := int64(math.MaxInt64) // saturate: Java would overflow into a 500
	if amount <= math.MaxInt64/unit.millis {
		millis = amount * unit.millis
	}
	if millis > maxTimeout.Milliseconds() {
		return 0, ditto.GatewayTimeoutInvalid(millis, maxTimeout.Milliseconds())
	}
	return time.Duration(millis) * time.Millisecond, nil
}

// isSignedDigits reports whether s is [+-]?[0-9]+ (Java's "[+-]?\d++").
func isSignedDigits(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
