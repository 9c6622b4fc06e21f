package connection

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/sshtunnel"
)

func entries(statuses ...client.Status) []statusEntry {
	out := make([]statusEntry, len(statuses))
	for i, s := range statuses {
		out[i] = statusEntry{status: s}
	}
	return out
}

func TestListStatus(t *testing.T) {
	openClients := entries("open")
	failedClients := entries("failed")
	for _, tc := range []struct {
		name    string
		list    []statusEntry
		clients []statusEntry
		want    client.Status
	}{
		{"empty is open", nil, failedClients, "open"},
		{"all open", entries("open", "open"), openClients, "open"},
		{"any failed", entries("open", "failed", "misconfigured"), openClients, "failed"},
		{"misconfigured", entries("open", "misconfigured"), openClients, "misconfigured"},
		{"all closed", entries("closed", "closed"), openClients, "closed"},
		{"unknown with open clients", entries("open", "unknown"), openClients, "open"},
		{"unknown with a client not open", entries("open", "unknown"), failedClients, "unknown"},
		{"closed and open", entries("closed", "open"), entries("unknown"), "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := listStatus(tc.list, tc.clients); got != tc.want {
				t.Errorf("listStatus = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestOverallAndRecovery(t *testing.T) {
	for _, tc := range []struct {
		lists []client.Status
		want  client.Status
	}{
		{[]client.Status{"open", "open", "open"}, "open"},
		{[]client.Status{"open", "failed", "misconfigured"}, "failed"},
		{[]client.Status{"open", "misconfigured", "closed"}, "misconfigured"},
		{[]client.Status{"closed", "closed", "closed"}, "closed"},
		{[]client.Status{"open", "closed", "open"}, "unknown"},
	} {
		if got := overall(tc.lists...); got != tc.want {
			t.Errorf("overall(%v) = %s, want %s", tc.lists, got, tc.want)
		}
	}
	rec := func(rs ...client.Recovery) []statusEntry {
		out := make([]statusEntry, len(rs))
		for i, r := range rs {
			out[i] = statusEntry{recovery: r}
		}
		return out
	}
	for _, tc := range []struct {
		clients []statusEntry
		want    client.Recovery
	}{
		{rec("succeeded", "succeeded"), "succeeded"},
		{rec("succeeded", "ongoing"), "ongoing"},
		{rec("ongoing", "backOffLimitReached"), "backOffLimitReached"},
		{rec("unknown"), "unknown"},
		{nil, "unknown"},
	} {
		if got := recoveryOf(tc.clients); got != tc.want {
			t.Errorf("recoveryOf = %s, want %s", got, tc.want)
		}
	}
}

func TestBackoffGrowsWithinBounds(t *testing.T) {
	b := client.Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2}
	for attempt, base := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		base *= time.Millisecond
		for range 20 {
			d := b.Delay(attempt)
			if d < base*8/10 || d > base*12/10 {
				t.Fatalf("attempt %d: delay %v outside %v ± 20%%", attempt, d, base)
			}
		}
	}
	if d := (client.Backoff{}).WithDefaults(); d.Min != 5*time.Second || d.Max != time.Hour {
		t.Errorf("defaults %+v, want Ditto's 5 s … 60 min", d)
	}
}

// A client that is not connected still has its tunnel's entry, from the
// error it failed with; a connection without a tunnel has none.
func TestRunnerResourcesWithoutClient(t *testing.T) {
	since := time.Unix(1700000000, 0)
	tunnelled := &model.Connection{SSHTunnel: &model.SSHTunnel{Enabled: true}}
	failed := &sshtunnel.Error{Stage: "Failed to connect to ssh server", Kind: "ConnectException", Msg: "No route to host"}
	for _, tc := range []struct {
		name string
		conn *model.Connection
		err  error
		want []client.ResourceStatus
	}{
		{"no tunnel", &model.Connection{}, failed, nil},
		{"disabled tunnel", &model.Connection{SSHTunnel: &model.SSHTunnel{}}, failed, nil},
		{"tunnel failed", tunnelled, errors.Join(errors.New("attempt 3"), failed), []client.ResourceStatus{{Type: "ssh",
			Status: client.StatusFailed, Details: "SSH tunnel failed - cause <ConnectException>: No route to host.", Since: since}}},
		{"broker failed", tunnelled, errors.New("broker refused"), []client.ResourceStatus{{Type: "ssh",
			Status: client.StatusClosed, Details: sshtunnel.DetailsClosed, Since: since}}},
		{"connecting", tunnelled, nil, []client.ResourceStatus{{Type: "ssh",
			Status: client.StatusClosed, Details: sshtunnel.DetailsClosed, Since: since}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{lastErr: tc.err, since: since}
			if got := r.resources(tc.conn); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("resources = %+v, want %+v", got, tc.want)
			}
		})
	}
}
