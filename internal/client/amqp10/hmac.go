package amqp10

import (
	"fmt"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/hmaccommon"
	"github.com/dittoconn/dittoconn/internal/model"
)

// hmacLogin applies HMAC credentials (az-sasl, the one algorithm Ditto
// signs AMQP 1.0 connections with) to cfg: SASL PLAIN with a shared access
// signature generated now, as Ditto logs in to Azure IoT Hub and Service
// Bus. The grain builds a client for every connect attempt, so every
// attempt gets a fresh signature; the broker closes the connection when
// it expires (ttl) and the reconnect signs again.
func hmacLogin(cr *model.Credentials, cfg *config, now time.Time) error {
	if cr.Algorithm != "az-sasl" {
		return fmt.Errorf("%w: HMAC algorithm %q is not supported for amqp-10 (only az-sasl)", client.ErrConfig, cr.Algorithm)
	}
	p := hmaccommon.NewParams(cr)
	s := hmaccommon.NewAzSASL(p)
	if p.Err != nil {
		return fmt.Errorf("%w: %v", client.ErrConfig, p.Err)
	}
	cfg.user, cfg.pass = s.AMQPCredentials(now)
	cfg.anonymous = false
	return nil
}
