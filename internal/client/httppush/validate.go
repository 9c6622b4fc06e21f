package httppush

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// httpMethods are the methods omitRequestBody may name.
var httpMethods = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}

// targetMethods are the methods a target address may start with.
var targetMethods = []string{"PUT", "PATCH", "POST", "GET", "DELETE"}

const supportedMethods = "PUT, PATCH, POST, GET, DELETE"

// validate is Ditto's HTTP push validator: URI scheme, no sources, targets
// "<VERB>:/<path>", payload mappings, an HTTPS token endpoint for OAuth
// client credentials when the service enforces it, then specificConfig.
func validate(k *model.Check) error {
	c := k.Conn
	if err := k.URIScheme([]string{"http", "https"}, []string{"https"}, "HTTP"); err != nil {
		return err
	}
	if len(c.Sources) > 0 {
		return ditto.ConfigurationInvalid("A connection of type 'http-push' may not have any source.")
	}
	for _, t := range c.Targets {
		desc := k.TargetDesc(t)
		if err := k.HeaderMapping(t.HeaderMapping); err != nil {
			return err
		}
		if err := k.Template(t.Address, template.Connectivity); err != nil {
			return err
		}
		method, _, ok := strings.Cut(t.Address, ":")
		if !ok {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("%s: Target address has invalid format. Expect '<VERB>:/<path>', for example 'POST:/api'.", desc),
				"Supported methods are: "+supportedMethods)
		}
		if !slices.Contains(targetMethods, method) {
			return ditto.ConfigurationInvalidDesc(fmt.Sprintf("%s: The method '%s' is not supported", desc, method),
				"Supported methods are: "+supportedMethods)
		}
		if err := k.ExtraFields(t); err != nil {
			return err
		}
	}
	if err := k.PayloadMappings(); err != nil {
		return err
	}
	if cr := c.Credentials; cr != nil && cr.Type == "oauth-client-credentials" && k.Config.OAuth2EnforceHTTPS {
		if cr.TokenEndpoint == nil || !strings.HasPrefix(*cr.TokenEndpoint, "https:") {
			return ditto.ConfigurationInvalid("The OAuth2 token endpoint must be accessed via HTTPS in order not to transmit the client secret in plain text.")
		}
	}
	return specificConfig(c.SpecificConfig)
}

// specificConfig checks idleTimeout, parallelism and omitRequestBody.
func specificConfig(sc map[string]string) error {
	if it, ok := sc["idleTimeout"]; ok {
		d, valid := model.ParseHoconDuration(it)
		if !valid || d < 0 || d > 60*time.Second {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("Idle timeout '%d' is not within the allowed range of [0, 60] seconds.", int64(d/time.Second)),
				"Please adjust the timeout to be within the allowed range.")
		}
	}
	if p, ok := sc["parallelism"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(p)); err != nil || n <= 0 {
			return ditto.ConfigurationInvalid(fmt.Sprintf(
				"The configured value '%s' of 'parallelism' is invalid. It must be a positive integer.", p))
		}
	}
	if orb, ok := sc["omitRequestBody"]; ok && orb != "" {
		methods := model.JavaSplit(orb, ",")
		for _, m := range methods {
			if m != "" && !slices.Contains(httpMethods, m) {
				return ditto.ConfigurationInvalid(fmt.Sprintf(
					"The configured value '%s' of 'omitRequestBody' is invalid. It contains an invalid HTTP method: %s",
					model.JavaList(methods), m))
			}
		}
	}
	return nil
}
