package main

import "strings"

// corsOriginsEnv names the browser origins allowed to call the API from
// another origin (comma-separated, "*" for any); unset keeps CORS off.
const corsOriginsEnv = "DITTOCONN_CORS_ALLOWED_ORIGINS"

// corsOrigins reads corsOriginsEnv. It lives apart from config.go so that
// the gateway's CORS setting needs no change there.
func corsOrigins(getenv func(string) string) []string {
	var out []string
	for _, o := range strings.Split(getenv(corsOriginsEnv), ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}
