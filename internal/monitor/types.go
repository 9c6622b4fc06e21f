package monitor

// Direction is Ditto's MetricDirection.
type Direction uint8

const (
	Inbound Direction = iota
	Outbound
)

func (d Direction) String() string {
	if d == Outbound {
		return "outbound"
	}
	return "inbound"
}

// MetricType is Ditto's MetricType. The declaration order is Ditto's enum
// order, which is the order of the keys in an address metric's JSON.
type MetricType uint8

const (
	Consumed MetricType = iota
	Dispatched
	Filtered
	Mapped
	Dropped
	Enforced
	Published
	Acknowledged
	Throttled
	Other
	numMetricTypes
)

var metricTypeNames = [numMetricTypes]string{"consumed", "dispatched", "filtered", "mapped", "dropped",
	"enforced", "published", "acknowledged", "throttled", "other"}

func (t MetricType) String() string {
	if t < numMetricTypes {
		return metricTypeNames[t]
	}
	return "unknown"
}

// Supports reports whether Ditto keeps counters of this type in direction d:
// inbound consumed, mapped, dropped, enforced, acknowledged, throttled, other;
// outbound dispatched, filtered, mapped, dropped, published, acknowledged, other.
func (t MetricType) Supports(d Direction) bool {
	switch t {
	case Mapped, Dropped, Acknowledged, Other:
		return true
	case Consumed, Enforced, Throttled:
		return d == Inbound
	case Dispatched, Filtered, Published:
		return d == Outbound
	}
	return false
}

// MetricTypes lists the types Ditto initialises for direction d, in JSON order.
func MetricTypes(d Direction) []MetricType {
	out := make([]MetricType, 0, 7)
	for t := MetricType(0); t < numMetricTypes; t++ {
		if t.Supports(d) {
			out = append(out, t)
		}
	}
	return out
}

// ResponsesAddress is the synthetic outbound address under which responses
// are counted and logged.
const ResponsesAddress = "_responses"

// LogCategory is Ditto's LogCategory.
type LogCategory uint8

const (
	CategorySource LogCategory = iota
	CategoryTarget
	CategoryResponse
	CategoryConnection
	numLogCategories
)

var logCategoryNames = [numLogCategories]string{"source", "target", "response", "connection"}

func (c LogCategory) String() string {
	if c < numLogCategories {
		return logCategoryNames[c]
	}
	return "unknown"
}

// LogType is Ditto's LogType; it shares names (and the enum order) with
// MetricType, so one type serves both.
type LogType = MetricType

// LogLevel is Ditto's LogLevel.
type LogLevel uint8

const (
	LevelSuccess LogLevel = iota
	LevelFailure
)

func (l LogLevel) String() string {
	if l == LevelFailure {
		return "failure"
	}
	return "success"
}
