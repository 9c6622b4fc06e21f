package kafka

import (
	"strings"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is the connection type model.TypeKafka: a test dials the first
// bootstrap server, not the URI, and an SSH tunnel is refused.
var Spec = client.Spec{Type: model.TypeKafka, Validation: model.Protocol{Rules: validate, NoSSHTunnel: true}, New: New, Shape: shape, DialAddress: dialAddress}

// shape of the source entries.
const shape = client.PerAddress

// dialAddress is the first of the bootstrap servers as written, else the
// URI's host:port.
func dialAddress(c *model.Connection) string {
	if bs := c.SpecificConfig[cfgBootstrapServers]; bs != "" {
		first, _, _ := strings.Cut(bs, ",")
		return first
	}
	return client.URIHostPort(c)
}
