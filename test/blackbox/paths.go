package blackbox

// Shard is the actor path of the connection grains (Ditto's shard region).
const Shard = "/system/sharding/connection"

// IDsPath is the actor path of the connection id listings.
const IDsPath = "/user/connectivityRoot/connectionIdsRetrieval"
