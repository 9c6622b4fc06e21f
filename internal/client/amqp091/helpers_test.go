package amqp091

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/client/clienttest/rabbitmq"
	"github.com/dittoconn/dittoconn/internal/model"
)

const (
	brokerAddr = rabbitmq.Addr
	brokerURI  = "amqp://guest:guest@" + brokerAddr + "/"
)

func newAdmin(t *testing.T) *rabbitmq.Admin { return rabbitmq.NewAdmin(t) }

func uniqueName(t *testing.T, suffix string) string { return rabbitmq.UniqueName(t, suffix) }

func needBroker(t *testing.T) { clienttest.NeedBroker(t, brokerAddr) }

func testConnection(id, uri string, sources []model.Source, targets []model.Target) *model.Connection {
	return rabbitmq.Connection(model.TypeAMQP091, id, uri, sources, targets)
}

func newTestClient(t *testing.T, conn *model.Connection) (client.Client, *clienttest.Recorder) {
	t.Helper()
	return clienttest.NewClient(t, New, conn)
}

// killConnection closes the named connection from the broker side with
// rabbitmqctl; false when rabbitmqctl is not usable here.
func killConnection(t *testing.T, name string) bool {
	t.Helper()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		return false
	}
	nodes := [][]string{{"-n", "rabbit@localhost"}, nil}
	if n := os.Getenv("RABBITMQ_NODENAME"); n != "" {
		nodes = append([][]string{{"-n", n}}, nodes...)
	}
	for _, node := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		args := append(append([]string{}, node...), "-q", "list_connections", "--no-table-headers", "pid", "client_properties")
		out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).Output()
		cancel()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.Contains(line, `"`+name+`"`) {
				continue
			}
			pid, _, _ := strings.Cut(line, "\t")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			args := append(append([]string{}, node...), "close_connection", strings.TrimSpace(pid), "test kills the connection")
			err := exec.CommandContext(ctx, "rabbitmqctl", args...).Run()
			cancel()
			if err != nil {
				t.Logf("rabbitmqctl close_connection: %v", err)
				return false
			}
			return true
		}
	}
	return false
}
