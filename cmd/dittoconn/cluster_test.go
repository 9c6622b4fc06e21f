package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestClusterConfigRefusals: cluster mode refuses the embedded store and
// an address other members could not dial, before anything starts.
func TestClusterConfigRefusals(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"embedded store", map[string]string{"DITTOCONN_CLUSTER_ETCD_ENDPOINTS": "127.0.0.1:2379"},
			"cluster mode (DITTOCONN_CLUSTER_ETCD_ENDPOINTS) needs the MongoDB engine"},
		{"bad lost-after", map[string]string{"DITTOCONN_CLUSTER_ETCD_LOST_AFTER": "soon"},
			"DITTOCONN_CLUSTER_ETCD_LOST_AFTER"},
		{"lease of a fraction of a second", map[string]string{"DITTOCONN_CLUSTER_ETCD_LEASE_TTL": "1500ms"},
			"DITTOCONN_CLUSTER_ETCD_LEASE_TTL (1.5s) must be whole seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["DITTOCONN_DATA_DIR"] = t.TempDir()
			var logs bytes.Buffer
			err := run(context.Background(), nil, func(k string) string { return tt.env[k] }, &logs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestClusterInstanceDefault: without INSTANCE_INDEX a cluster node is
// named after its advertised (else bound) address, so that aggregated
// answers of nodes on one host do not collide.
func TestClusterInstanceDefault(t *testing.T) {
	env := map[string]string{"DITTOCONN_CLUSTER_ETCD_ENDPOINTS": "127.0.0.1:2379", "MONGO_DB_URI": "mongodb://127.0.0.1:1"}
	get := func(k string) string { return env[k] }
	env["DITTOCONN_CLUSTER_ADVERTISE"] = "node-a:8090"
	if cfg, err := parseConfig(nil, get); err != nil || cfg.Instance != "node-a:8090" {
		t.Errorf("instance %q, %v", cfg.Instance, err)
	}
	delete(env, "DITTOCONN_CLUSTER_ADVERTISE")
	env["DITTOCONN_CLUSTER_BIND"] = "127.0.0.1:7001"
	if cfg, err := parseConfig(nil, get); err != nil || cfg.Instance != "127.0.0.1:7001" {
		t.Errorf("instance %q, %v", cfg.Instance, err)
	}
	env["INSTANCE_INDEX"] = "7"
	if cfg, err := parseConfig(nil, get); err != nil || cfg.Instance != "7" {
		t.Errorf("instance %q, %v", cfg.Instance, err)
	}
}
