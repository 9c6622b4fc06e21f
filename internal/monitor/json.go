package monitor

import (
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

func appendInstantOrNull(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	return ojson.Ditto.AppendString(b, ditto.FormatInstant(t))
}

// javaLength is the length Java's String.length() reports for s (UTF-16
// code units): Ditto caps the log answer by the sum of these.
func javaLength(s []byte) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		if utf16.RuneLen(r) == 2 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func appendMeasurement(b []byte, m Measurement) []byte {
	b = append(b, `{"PT1M":`...)
	b = strconv.AppendInt(b, m.PT1M, 10)
	b = append(b, `,"PT1H":`...)
	b = strconv.AppendInt(b, m.PT1H, 10)
	b = append(b, `,"PT24H":`...)
	b = strconv.AppendInt(b, m.PT24H, 10)
	b = append(b, `,"lastMessageAt":`...)
	b = appendInstantOrNull(b, m.LastMessageAt)
	return append(b, '}')
}

// AppendJSON writes the address metric in Ditto's shape: types in Ditto's
// enum order, each with "success" and "failure"; empty is null.
func (a AddressMetric) AppendJSON(b []byte) []byte {
	if len(a) == 0 {
		return append(b, "null"...)
	}
	b = append(b, '{')
	first := true
	for t := MetricType(0); t < numMetricTypes; t++ {
		m, ok := a[t]
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = ojson.Ditto.AppendString(b, t.String())
		b = append(b, `:{"success":`...)
		b = appendMeasurement(b, m.Success)
		b = append(b, `,"failure":`...)
		b = appendMeasurement(b, m.Failure)
		b = append(b, '}')
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (a AddressMetric) MarshalJSON() ([]byte, error) { return a.AppendJSON(nil), nil }

// ConnectionMetricsJSON is the "connectionMetrics" value:
// {"inbound":…,"outbound":…}; for a nil snapshot {"inbound":null,"outbound":null}.
func (s *MetricsSnapshot) ConnectionMetricsJSON() []byte {
	b := append([]byte(nil), `{"inbound":`...)
	b = s.Inbound().AppendJSON(b)
	b = append(b, `,"outbound":`...)
	b = s.Outbound().AppendJSON(b)
	return append(b, '}')
}

// SourceMetricsJSON is the "sourceMetrics" value: {"addressMetrics":{address:…}}
// or {"addressMetrics":null} when there is no source address.
func (s *MetricsSnapshot) SourceMetricsJSON() []byte {
	if s == nil {
		return addressMetricsJSON(nil)
	}
	return addressMetricsJSON(s.Sources)
}

// TargetMetricsJSON is the "targetMetrics" value, like SourceMetricsJSON.
func (s *MetricsSnapshot) TargetMetricsJSON() []byte {
	if s == nil {
		return addressMetricsJSON(nil)
	}
	return addressMetricsJSON(s.Targets)
}

func addressMetricsJSON(list []AddressMetrics) []byte {
	b := append([]byte(nil), `{"addressMetrics":`...)
	if len(list) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		for i, am := range list {
			if i > 0 {
				b = append(b, ',')
			}
			key := am.Address
			if key == "" {
				key = "<empty>" // Ditto's key for an empty address
			}
			b = ojson.Ditto.AppendString(b, key)
			b = append(b, ':')
			b = am.Metric.AppendJSON(b)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}
