package main

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/actors/monitor"
)

// dataPlaneMonitoring is what the data plane reports to: the Prometheus
// collector of the message counters (served at /metrics), the connection
// log settings and the optional Fluentd publisher of log entries.
type dataPlaneMonitoring struct {
	collector *monitor.Collector
	handler   http.Handler
	logs      monitor.LogConfig
	publisher monitor.Publisher
	close     func()
}

// newDataPlaneMonitoring reads CONNECTIVITY_LOGGER_* and
// CONNECTIVITY_LOGGER_PUBLISHER_* (Ditto's names) from the environment.
func newDataPlaneMonitoring(instance string, getenv func(string) string, log zerolog.Logger) (*dataPlaneMonitoring, error) {
	logs, err := monitor.LogConfigFromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("connection log settings: %w", err)
	}
	fluent, err := monitor.FluentConfigFromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("connection log publisher settings: %w", err)
	}
	m := &dataPlaneMonitoring{collector: monitor.NewCollector(), logs: logs, close: func() {}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.collector, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if fluent.Enabled {
		p, err := monitor.NewFluentPublisher(fluent, instance)
		if err != nil {
			return nil, fmt.Errorf("connection log publisher: %w", err)
		}
		m.publisher = p
		m.close = func() {
			if err := p.Close(); err != nil {
				log.Warn().Err(err).Msg("flushing connection logs to Fluentd failed")
			}
		}
		log.Info().Str("host", fluent.Host).Int("port", fluent.Port).Msg("publishing connection logs to Fluentd")
	}
	return m, nil
}
