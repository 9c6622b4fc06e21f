package amqp10

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dittoconn/dittoconn/internal/client/amqpcommon"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// honoured are the specificConfig keys parseConfig acts on. Ditto hands every
// key to Qpid JMS as a URI option, so any of Qpid's options is accepted
// there; this client has no Qpid underneath, and a key it does not act on
// would be stored and silently ignored. Refuse it instead (issue 15).
var honoured = []string{
	cfgClientID, cfgConnectTimeout, cfgSendTimeout, cfgRequestTimeout, cfgPrefetchAll,
	cfgUsername, cfgPassword, cfgSASLMechanisms, cfgQueuePrefix, cfgTopicPrefix,
	cfgTrustAll, cfgVerifyHost,
}

// rules are Ditto's AMQP rules, then the refusal of the specificConfig keys
// this client does not act on.
func rules(k *model.Check) error {
	if err := amqpcommon.Rules("AMQP 1.0")(k); err != nil {
		return err
	}
	return specificConfig(k.Conn.SpecificConfig, k.Conn.FailoverEnabled)
}

// specificConfig refuses the first (in sorted order, so the answer is
// stable) key outside honoured, and a failover option without
// failoverEnabled (Ditto hands it to a URI without Qpid's failover
// transport, where nothing reads it).
func specificConfig(sc map[string]string, failover bool) error {
	keys := make([]string, 0, len(sc))
	for k := range sc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, failoverPrefix) && slices.Contains(failoverKeys, k) {
			if failover {
				continue
			}
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("The specific config '%s' needs 'failoverEnabled' to be true.", k),
				"Set 'failoverEnabled' to true or remove the failover options.")
		}
		if !slices.Contains(honoured, k) {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("The specific config '%s' is not supported for AMQP 1.0 connections.", k),
				"Supported specific config keys are: "+strings.Join(honoured, ", ")+
					" and, with failoverEnabled, "+strings.Join(failoverKeys, ", ")+".")
		}
	}
	return nil
}
