//go:build !unix

package bolt

import "os"

// lockShared is a no-op where flock does not exist.
func lockShared(*os.File) (func(), error) { return func() {}, nil }
