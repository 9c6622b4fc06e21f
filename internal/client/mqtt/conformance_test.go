package mqtt

import (
	"testing"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/client/clienttest/mosquitto"
)

func TestIntegrationConformance(t *testing.T) {
	clienttest.Run(t, mosquitto.Harness(Spec))
}

func TestIntegrationConformanceTunnelled(t *testing.T) {
	clienttest.RunTunnelled(t, mosquitto.Harness(Spec))
}

// TestKeepAliveBareNumberIsMillis: keepAlive "60" is 60 ms as Ditto reads
// it (0 s on the wire), "60s" is 60 s.
func TestKeepAliveBareNumberIsMillis(t *testing.T) { mosquitto.KeepAliveOnTheWire(t, Spec) }
