// Package pb holds the protobuf messages that cross actor and node boundaries,
// and (command.go) how every sender and receiver of a Command reads its
// deadline and its response-required header.
// Regenerate with `go generate ./proto` (needs protoc and protoc-gen-go v1.36.12).
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative dittoconn.proto
