// Package ditto is the vocabulary dittoconn shares with Eclipse Ditto: command
// and response type strings, header names and the error catalogue with its
// stable codes. It is a leaf: it imports nothing of ours.
package ditto
