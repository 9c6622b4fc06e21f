package main

import (
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/dataplane"
)

// DITTOCONN_STANDALONE_ROUTING: never wider than subjects by default; all
// widens it; anything else stops the service with the variable's name.
func TestStandaloneRoutingSetting(t *testing.T) {
	cfg, err := parseConfig(nil, envOf(nil))
	if err != nil || cfg.Actors.StandaloneRouting != dataplane.RoutingSubjects {
		t.Fatalf("default %q, %v", cfg.Actors.StandaloneRouting, err)
	}
	cfg, err = parseConfig(nil, envOf(map[string]string{"DITTOCONN_STANDALONE_ROUTING": "all"}))
	if err != nil || cfg.Actors.StandaloneRouting != dataplane.RoutingAll {
		t.Fatalf("all: %q, %v", cfg.Actors.StandaloneRouting, err)
	}
	_, err = parseConfig(nil, envOf(map[string]string{"DITTOCONN_STANDALONE_ROUTING": "authorized"}))
	if err == nil || !strings.Contains(err.Error(), "DITTOCONN_STANDALONE_ROUTING") || !strings.Contains(err.Error(), `"subjects"`) {
		t.Fatalf("unknown value: %v", err)
	}
}
