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
