package ditto

// ConnectionIDRegex is the pattern of a connection id (ConnectionId.ID_REGEX).
const ConnectionIDRegex = "[a-zA-Z0-9-_:]{1,100}"

// ServiceName is the cluster role and the key of aggregated piggyback responses.
const ServiceName = "connectivity"

// Actor paths a piggyback envelope may target.
const (
	PathConnectionShard     = "/system/sharding/connection"
	PathConnectionIDs       = "/user/connectivityRoot/connectionIdsRetrieval"
	PathEncryptionMigration = "/user/connectivityRoot/encryptionMigration"
)

// Command type strings.
const (
	CreateConnection             = "connectivity.commands:createConnection"
	ModifyConnection             = "connectivity.commands:modifyConnection"
	RetrieveConnection           = "connectivity.commands:retrieveConnection"
	DeleteConnection             = "connectivity.commands:deleteConnection"
	OpenConnection               = "connectivity.commands:openConnection"
	CloseConnection              = "connectivity.commands:closeConnection"
	TestConnection               = "connectivity.commands:testConnection"
	RetrieveConnectionStatus     = "connectivity.commands:retrieveConnectionStatus"
	RetrieveConnectionMetrics    = "connectivity.commands:retrieveConnectionMetrics"
	ResetConnectionMetrics       = "connectivity.commands:resetConnectionMetrics"
	EnableConnectionLogs         = "connectivity.commands:enableConnectionLogs"
	RetrieveConnectionLogs       = "connectivity.commands:retrieveConnectionLogs"
	ResetConnectionLogs          = "connectivity.commands:resetConnectionLogs"
	LoggingExpired               = "connectivity.commands:loggingExpired"
	CheckConnectionLogsActive    = "connectivity.commands:checkConnectionLogsActive"
	RetrieveAllConnectionIDs     = "connectivity.commands:retrieveAllConnectionIds"
	SudoRetrieveConnectionTags   = "connectivity.sudo.commands:sudoRetrieveConnectionTags"
	SudoRetrieveConnectionIDsTag = "connectivity.sudo.commands:sudoRetrieveConnectionIdsByTag"
	MigrateEncryption            = "connectivity.commands:migrateEncryption"
	MigrateEncryptionStatus      = "connectivity.commands:migrateEncryptionStatus"
	MigrateEncryptionAbort       = "connectivity.commands:migrateEncryptionAbort"
)

// Event type strings (journal manifests).
const (
	EventConnectionCreated  = "connectivity.events:connectionCreated"
	EventConnectionModified = "connectivity.events:connectionModified"
	EventConnectionOpened   = "connectivity.events:connectionOpened"
	EventConnectionClosed   = "connectivity.events:connectionClosed"
	EventConnectionDeleted  = "connectivity.events:connectionDeleted"
	EventEmpty              = "persistence-actor-internal:empty-event"
)

// Devops envelope response types.
const (
	DevopsErrorResponse = "devops.responses:errorResponse"
)

// KnownCommandTypes lists every piggyback command type this service parses.
// A type outside it is answered with json.type.notparsable.
var KnownCommandTypes = map[string]bool{
	CreateConnection: true, ModifyConnection: true, RetrieveConnection: true, DeleteConnection: true,
	OpenConnection: true, CloseConnection: true, TestConnection: true, RetrieveConnectionStatus: true,
	RetrieveConnectionMetrics: true, ResetConnectionMetrics: true, EnableConnectionLogs: true,
	RetrieveConnectionLogs: true, ResetConnectionLogs: true, LoggingExpired: true,
	CheckConnectionLogsActive: true, RetrieveAllConnectionIDs: true, SudoRetrieveConnectionTags: true,
	SudoRetrieveConnectionIDsTag: true, MigrateEncryption: true, MigrateEncryptionStatus: true,
	MigrateEncryptionAbort: true,
}

// ResponseType maps a command type to its response type:
// "connectivity.commands:x" → "connectivity.responses:x" (sudo likewise).
func ResponseType(commandType string) string {
	for _, p := range [][2]string{
		{"connectivity.sudo.commands:", "connectivity.sudo.responses:"},
		{"connectivity.commands:", "connectivity.responses:"},
	} {
		if len(commandType) > len(p[0]) && commandType[:len(p[0])] == p[0] {
			return p[1] + commandType[len(p[0]):]
		}
	}
	return commandType
}
