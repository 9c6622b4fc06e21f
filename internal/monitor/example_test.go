package monitor_test

import (
	"fmt"
	"time"

	"github.com/dittoconn/dittoconn/internal/monitor"
)

// The data plane counts and logs from its client goroutines; the grain
// answers from snapshots (here with one client; several are merged with
// MergeMetrics / MergeLogs).
func Example() {
	now := func() time.Time { return time.Date(2026, 5, 2, 10, 0, 1, 5e8, time.UTC) }
	metrics := monitor.NewRegistry(monitor.Options{ConnectionID: "mqtt-1", ConnectionType: "mqtt", Now: now})
	metrics.Init([]string{"devices/#"}, nil)
	logs := monitor.NewLogs(monitor.LogOptions{ConnectionID: "mqtt-1", Now: now})
	logs.Enable()

	// client goroutine, per message
	consumed := metrics.Inbound(monitor.Consumed, "devices/#")
	consumedLog := logs.Source(monitor.Consumed, "devices/#")
	consumed.Success()
	consumedLog.Success(monitor.Info{CorrelationID: "c-1", EntityType: "thing", EntityID: "org.acme:dev-1"})

	// grain: retrieveConnectionMetrics / retrieveConnectionLogs
	snap := monitor.MergeMetrics(metrics.Snapshot())
	fmt.Println(snap.ContainsFailures(), string(snap.ConnectionMetricsJSON())[:106])
	l := logs.Retrieve()
	fmt.Println(string(l.ConnectionLogsJSON()))
	fmt.Println(string(l.EnabledUntilJSON()))
	// Output:
	// false {"inbound":{"consumed":{"success":{"PT1M":1,"PT1H":1,"PT24H":1,"lastMessageAt":"2026-05-02T10:00:01.500Z"}
	// [{"correlationId":"c-1","timestamp":"2026-05-02T10:00:01.500Z","category":"source","type":"consumed","level":"success","message":"Received signal.","address":"devices/#","entityType":"thing","entityId":"org.acme:dev-1"}]
	// "2026-05-02T11:00:01.500Z"
}
