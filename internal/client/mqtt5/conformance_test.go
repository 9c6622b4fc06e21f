package mqtt5

import (
	"testing"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/client/clienttest/mosquitto"
)

func TestIntegrationConformance(t *testing.T) {
	clienttest.Run(t, mosquitto.Harness(Spec))
}

func TestIntegrationSeparatePublisher(t *testing.T) { mosquitto.SeparatePublisher(t, Spec) }
