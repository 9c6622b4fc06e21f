package ditto

import "net/http"

// CodeTooManyRequests is Ditto's code for a client over its request budget.
const CodeTooManyRequests = "too.many.requests"

// TooManyRequests is 429 too.many.requests.
func TooManyRequests() *Error {
	return New(http.StatusTooManyRequests, CodeTooManyRequests,
		"You made too many requests.", "Try again later.")
}
