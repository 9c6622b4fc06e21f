package main

import (
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/mapping"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The JavaScript limits: Ditto's variables and defaults, and dittoconn's
// own guards beside them.
func TestJavaScriptMappingSettings(t *testing.T) {
	cfg, err := parseConfig(nil, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Actors.Mapping, mapping.DefaultConfig(); got.JavaScript != want.JavaScript ||
		got.MaxMappedInboundMessages != 10 || got.MaxInboundPayloadBytes != want.MaxInboundPayloadBytes {
		t.Fatalf("defaults %+v, want %+v", got, want)
	}
	if js := cfg.Actors.Mapping.JavaScript; js.MaxScriptSizeBytes != 50000 || js.MaxScriptExecutionTime != 500*time.Millisecond || js.MaxScriptStackDepth != 25 {
		t.Fatalf("Ditto's defaults: %+v", js)
	}
	cfg, err = parseConfig(nil, envOf(map[string]string{
		"CONNECTIVITY_MESSAGE_MAPPING_JS_MAX_SCRIPT_SIZE_BYTES":         "100000",
		"CONNECTIVITY_MESSAGE_MAPPING_JS_MAX_EXECUTION_TIME":            "2 seconds",
		"CONNECTIVITY_MESSAGE_MAPPING_JS_MAX_STACK_DEPTH":               "100",
		"CONNECTIVITY_MESSAGE_MAPPING_JS_ALLOW_UNSAFE_STANDARD_OBJECTS": "false",
		"CONNECTIVITY_MESSAGE_MAPPING_JS_COMMON_JS_MODULE_PATH":         "/opt/commonjs-modules/",
		"DITTOCONN_MESSAGE_MAPPING_JS_MAX_ALLOCATION_BYTES":             "1024",
		"DITTOCONN_MESSAGE_MAPPING_JS_MAX_HEAP_GROWTH_BYTES":            "2048",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := mapping.JavaScriptLimits{MaxScriptSizeBytes: 100000, MaxScriptExecutionTime: 2 * time.Second, MaxScriptStackDepth: 100,
		CommonJSModulePath: "/opt/commonjs-modules/", MaxScriptAllocationBytes: 1024, MaxScriptHeapGrowthBytes: 2048}
	if got := cfg.Actors.Mapping.JavaScript; got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Other mapping limits keep their defaults when one is set.
	if cfg.Actors.Mapping.MaxMappedOutboundMessages != 10 {
		t.Fatalf("mapper limits lost: %+v", cfg.Actors.Mapping)
	}
	for env, val := range map[string]string{
		"CONNECTIVITY_MESSAGE_MAPPING_JS_ALLOW_UNSAFE_STANDARD_OBJECTS": "true",
		"CONNECTIVITY_MESSAGE_MAPPING_JS_MAX_STACK_DEPTH":               "0",
		"CONNECTIVITY_MESSAGE_MAPPING_JS_MAX_EXECUTION_TIME":            "soon",
		"CONNECTIVITY_MESSAGE_MAPPING_JS_MAX_SCRIPT_SIZE_BYTES":         "-1",
	} {
		if _, err := parseConfig(nil, envOf(map[string]string{env: val})); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: %v", env, val, err)
		}
	}
}

// Ditto's names for settings that had only dittoconn's: both are read,
// Ditto's wins.
func TestDittoNamesAndAliases(t *testing.T) {
	cfg, err := parseConfig(nil, envOf(map[string]string{
		"DITTOCONN_CLIENT_BACKOFF_MIN":     "1s",
		"DITTOCONN_CLIENT_BACKOFF_MAX":     "2m",
		"DITTOCONN_CLIENT_TESTING_TIMEOUT": "3s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Actors.Backoff.Min != time.Second || cfg.Actors.Backoff.Max != 2*time.Minute || cfg.Actors.TestTimeout != 3*time.Second {
		t.Fatalf("aliases: %+v %v", cfg.Actors.Backoff, cfg.Actors.TestTimeout)
	}
	cfg, err = parseConfig(nil, envOf(map[string]string{
		"DITTOCONN_CLIENT_BACKOFF_MIN":               "1s",
		"CONNECTIVITY_CLIENT_MIN_BACKOFF":            "7s",
		"CONNECTIVITY_CLIENT_MAX_BACKOFF":            "1h",
		"DITTOCONN_CLIENT_TESTING_TIMEOUT":           "3s",
		"CONNECTIVITY_CLIENT_TESTING_TIMEOUT":        "20000", // HOCON: a bare number is milliseconds
		"CONNECTION_ACTIVITY_CHECK_DELETED_INTERVAL": "1d",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Actors.Backoff.Min != 7*time.Second || cfg.Actors.Backoff.Max != time.Hour || cfg.Actors.TestTimeout != 20*time.Second ||
		cfg.Actors.PassivateDeletedAfter != 24*time.Hour {
		t.Fatalf("Ditto's names: %+v", cfg)
	}
	_, err = parseConfig(nil, envOf(map[string]string{"CONNECTIVITY_CLIENT_MIN_BACKOFF": "2h"}))
	if err == nil || !strings.Contains(err.Error(), "CONNECTIVITY_CLIENT_MAX_BACKOFF") {
		t.Fatalf("min above max: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"500ms": 500 * time.Millisecond, "500": 500 * time.Millisecond, "500 ms": 500 * time.Millisecond,
		"2 seconds": 2 * time.Second, "1 minute": time.Minute, "60m": time.Hour, "2d": 48 * time.Hour,
		"1.5s": 1500 * time.Millisecond, "3 hours": 3 * time.Hour, "1m30s": 90 * time.Second, "10 millis": 10 * time.Millisecond,
	} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "5 fortnights", "s"} {
		if d, err := parseDuration(in); err == nil {
			t.Errorf("%q: %v, want an error", in, d)
		}
	}
}

func TestBooleanHOCONSpellings(t *testing.T) {
	for val, want := range map[string]bool{"on": true, "yes": true, "TRUE": true, "off": false, "no": false, "0": false} {
		cfg, err := parseConfig(nil, envOf(map[string]string{"DEVOPS_SECURED": val}))
		if err != nil || cfg.Gateway.DevopsSecured != want {
			t.Errorf("%q: %v %v", val, cfg.Gateway.DevopsSecured, err)
		}
	}
	if _, err := parseConfig(nil, envOf(map[string]string{"DEVOPS_SECURED": "maybe"})); err == nil {
		t.Error("maybe: accepted")
	}
}

// FuzzParseDuration: any text either fails or gives a duration that reads
// back the same in Go's form.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"500ms", "500", "2 seconds", "1d", "1.5 hours", "", "x", "9999999999999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			return
		}
		if back, err := time.ParseDuration(d.String()); err != nil || back != d {
			t.Fatalf("%q: %v reads back as %v (%v)", s, d, back, err)
		}
	})
}

// A cleanup period may be zero; an interval must be positive; neither may
// be negative.
func TestCleanupDurations(t *testing.T) {
	cfg, err := parseConfig(nil, envOf(map[string]string{"CLEANUP_QUIET_PERIOD": "0", "CLEANUP_HISTORY_RETENTION_DURATION": "0s"}))
	if err != nil || cfg.Cleanup.QuietPeriod != 0 || cfg.Cleanup.HistoryRetention != 0 {
		t.Fatalf("zero periods: %v %+v", err, cfg.Cleanup)
	}
	for env, why := range map[string]string{
		"CLEANUP_QUIET_PERIOD": "is not a duration of zero or more", "CLEANUP_INTERVAL": "is not a positive duration",
	} {
		for _, v := range []string{"-1s", "0"} {
			_, err := parseConfig(nil, envOf(map[string]string{env: v}))
			refused := err != nil && strings.Contains(err.Error(), env) && strings.Contains(err.Error(), why)
			if wantRefused := v == "-1s" || env == "CLEANUP_INTERVAL"; refused != wantRefused {
				t.Errorf("%s=%s: %v", env, v, err)
			}
		}
	}
}
