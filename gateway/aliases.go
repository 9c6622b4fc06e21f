package gateway

import "github.com/dittoconn/dittoconn/proto/ditto"

// targetAliases are actor paths clients send that name an actor under
// another path here. Ditto's Explorer UI in its Ditto 2 mode addresses the
// id listing through its cluster singleton's path.
var targetAliases = map[string]string{
	ditto.PathConnectionIDs + "/singleton": ditto.PathConnectionIDs,
}

// normaliseTarget maps an alias to the path the Dispatcher knows.
func normaliseTarget(target string) string {
	if t, ok := targetAliases[target]; ok {
		return t
	}
	return target
}
