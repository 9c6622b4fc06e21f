package connection

import (
	"encoding/json"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
	pb "github.com/dittoconn/dittoconn/proto"
)

// Messages between members are pb.Command values whose Type names a Go type
// and whose Payload is that type's JSON: no new protobuf types, since a
// member that receives an unknown one crashes. encodeInternal and
// decodeInternal are the only code that sees the JSON; handlers switch on
// the Go types.

// internal is a message between members.
type internal interface{ internalType() string }

const (
	satStartType = "dittoconn.internal:startSatellite" // grain → host: start or renew
	satStopType  = "dittoconn.internal:stopSatellite"  // grain → host
	satStateType = "dittoconn.internal:satelliteState" // host → grain
	satResetType = "dittoconn.internal:resetSatelliteMetrics"
)

func (*satStart) internalType() string { return satStartType }
func (*satStop) internalType() string  { return satStopType }
func (*satReset) internalType() string { return satResetType }
func (*satState) internalType() string { return satStateType }

// internalTypes makes an empty message of each internal type.
var internalTypes = map[string]func() internal{
	satStartType: func() internal { return &satStart{} },
	satStopType:  func() internal { return &satStop{} },
	satResetType: func() internal { return &satReset{} },
	satStateType: func() internal { return &satState{} },
}

// encodeInternal wraps m for the wire.
func encodeInternal(m internal) *pb.Command {
	return &pb.Command{Type: m.internalType(), Payload: encodeWire(m)}
}

// decodeInternal reads an internal message; known is false for any other
// command. A known type whose payload does not read is nil (dropped, as a
// message from a member of another version may be).
func decodeInternal(cmd *pb.Command) (m internal, known bool) {
	mk, ok := internalTypes[cmd.Type]
	if !ok {
		return nil, false
	}
	m = mk()
	if json.Unmarshal(cmd.Payload, m) != nil {
		return nil, true
	}
	return m, true
}

type satStart struct {
	Connection   json.RawMessage `json:"connection"` // with secrets: the cluster link must be private
	Index        int             `json:"index"`
	Gen          uint64          `json:"gen"`
	OwnerAddress string          `json:"ownerAddress"`
	OwnerID      string          `json:"ownerId"`
}

// satRef names one satellite.
type satRef struct {
	ConnectionID string `json:"connectionId"`
	Index        int    `json:"index"`
}

// satStop stops a satellite; satReset resets its metrics (grain → host).
type (
	satStop  struct{ satRef }
	satReset struct{ satRef }
)

// satDittoSession is the type of a satEntry that is one of the satellite's
// sessions with Ditto (a client entry in the status); its runner's
// resources have the types of client.ResourceStatus, "client" included.
const satDittoSession = "ditto-session"

type satEntry struct {
	Type     string          `json:"type"`
	Address  string          `json:"address,omitempty"`
	Status   client.Status   `json:"status"`
	Recovery client.Recovery `json:"recovery,omitempty"` // satDittoSession entries
	Details  string          `json:"details,omitempty"`
	Since    time.Time       `json:"since"`
}

type satState struct {
	ConnectionID string          `json:"connectionId"`
	Index        int             `json:"index"`
	Gen          uint64          `json:"gen"`
	Instance     string          `json:"instance"`
	Status       client.Status   `json:"status"`
	Recovery     client.Recovery `json:"recovery"`
	Details      string          `json:"details"`
	Since        time.Time       `json:"since"`
	Resources    []satEntry      `json:"resources,omitempty"`
	// Metrics are the satellite's message counters (monitor's JSON is
	// Ditto's answer shape, which does not read back).
	Metrics *wireMetrics `json:"metrics,omitempty"`
}

type wireMeasurement struct {
	M1, H1, H24 int64
	Last        time.Time
}

type wireType struct {
	Type             monitor.MetricType
	Success, Failure wireMeasurement
}

type wireAddress struct {
	Address string
	Types   []wireType
}

type wireMetrics struct {
	Sources, Targets []wireAddress
}

func toWire(m *monitor.MetricsSnapshot) *wireMetrics {
	if m == nil {
		return nil
	}
	conv := func(list []monitor.AddressMetrics) []wireAddress {
		out := make([]wireAddress, 0, len(list))
		for _, a := range list {
			w := wireAddress{Address: a.Address}
			for t, tm := range a.Metric {
				w.Types = append(w.Types, wireType{Type: t,
					Success: wireMeasurement{tm.Success.PT1M, tm.Success.PT1H, tm.Success.PT24H, tm.Success.LastMessageAt},
					Failure: wireMeasurement{tm.Failure.PT1M, tm.Failure.PT1H, tm.Failure.PT24H, tm.Failure.LastMessageAt}})
			}
			out = append(out, w)
		}
		return out
	}
	return &wireMetrics{Sources: conv(m.Sources), Targets: conv(m.Targets)}
}

func (w *wireMetrics) snapshot() *monitor.MetricsSnapshot {
	if w == nil {
		return nil
	}
	conv := func(list []wireAddress) []monitor.AddressMetrics {
		out := make([]monitor.AddressMetrics, 0, len(list))
		for _, a := range list {
			m := monitor.AddressMetric{}
			for _, t := range a.Types {
				m[t.Type] = monitor.TypeMeasurements{
					Success: monitor.Measurement{PT1M: t.Success.M1, PT1H: t.Success.H1, PT24H: t.Success.H24, LastMessageAt: t.Success.Last},
					Failure: monitor.Measurement{PT1M: t.Failure.M1, PT1H: t.Failure.H1, PT24H: t.Failure.H24, LastMessageAt: t.Failure.Last}}
			}
			out = append(out, monitor.AddressMetrics{Address: a.Address, Metric: m})
		}
		return out
	}
	return &monitor.MetricsSnapshot{Sources: conv(w.Sources), Targets: conv(w.Targets)}
}

// encodeWire is m's JSON; decodeInternal reads it back with encoding/json.
func encodeWire(m internal) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		return []byte("null") // the message types hold nothing that fails
	}
	return b
}
