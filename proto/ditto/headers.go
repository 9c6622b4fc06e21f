package ditto

// Ditto header names used by this service.
const (
	HeaderAggregate        = "aggregate"
	HeaderIsGroupTopic     = "is-group-topic"
	HeaderSudo             = "ditto-sudo"
	HeaderTimeout          = "timeout"
	HeaderResponseRequired = "response-required"
	HeaderCorrelationID    = "correlation-id"
	HeaderEntityRevision   = "entity-revision"
	HeaderDryRun           = "ditto-dry-run"
)
