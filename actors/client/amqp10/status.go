package amqp10

import "github.com/dittoconn/dittoconn/actors/client"

// Status details, worded like Ditto's.
const (
	detailConnected       = client.DetailsConnected
	detailDisconnected    = client.DetailsDisconnected
	detailNotConnected    = client.DetailsNotConnected
	detailConsumerStarted = client.DetailsConsumerStarted
	detailConsumerStopped = client.DetailsConsumerStopped
	detailProducerStarted = client.DetailsProducerStarted
	detailProducerStopped = client.DetailsProducerStopped
)

// resource is the live state behind one status entry.
type resource = client.Resource
