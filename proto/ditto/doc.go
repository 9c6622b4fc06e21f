// Package ditto is the vocabulary dittoconn shares with Eclipse Ditto: command
// and response type strings, header names and the error catalogue with its
// stable codes. Despite its place under proto/ it holds no protobuf: it is
// plain Go constants and error values, kept beside the protobuf messages
// because both are what crosses a boundary (the wire to Ditto, the wire
// between members). It is a leaf: it imports nothing of ours.
package ditto
