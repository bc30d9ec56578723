// Package cairn holds Cairn's domain: the tracking Event and its validation,
// journey queries, the application Error type, and the interfaces through
// which the rest of the program talks (EventStore, Ingester, ...).
//
// Cairn ingests user-tracking events at high volume and answers "what did
// this user do, in order?". Adapters live in one package per technology
// (wal, pebble, mongo, http, ...) and are wired together in cmd/cairn.
// This package imports only the standard library.
package cairn

import (
	"errors"
	"fmt"
)

// Error codes returned by Cairn's services. The http package maps each code to
// one HTTP status.
const (
	// EINVALID means the caller sent something malformed (400).
	EINVALID = "invalid"
	// ETOOLARGE means a body or event exceeds a size limit (413).
	ETOOLARGE = "too_large"
	// EUNSUPPORTED means an unsupported media type or encoding (415).
	EUNSUPPORTED = "unsupported_media_type"
	// EUNAVAILABLE means the service is overloaded or a dependency is down (503).
	EUNAVAILABLE = "unavailable"
	// ENOTFOUND means the requested thing does not exist (404).
	ENOTFOUND = "not_found"
	// EUNAUTHORIZED means no valid credentials were presented (401).
	EUNAUTHORIZED = "unauthorized"
	// EFORBIDDEN means the credentials do not allow the action (403).
	EFORBIDDEN = "forbidden"
	// ECONFLICT means the request conflicts with stored state (409).
	ECONFLICT = "conflict"
	// EINTERNAL means an unexpected failure; details are logged, not returned (500).
	EINTERNAL = "internal"
)

// Error is an application error with a machine-readable code and a message
// that is safe to show to API clients.
type Error struct {
	// Code is one of the E* constants.
	Code string
	// Message is a human-readable, client-safe description.
	Message string
	// Details lists per-field problems, for EINVALID errors on event batches.
	Details []FieldError
	// Err is the underlying cause, for logs only.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("cairn %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("cairn %s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and
// EINTERNAL otherwise. A nil error has no code.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err if it is an *Error,
// and a generic message otherwise.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// FieldError describes one invalid field of one event in a request.
type FieldError struct {
	// Index is the event's position in the request (0 for a single object).
	Index int `json:"index"`
	// Field is the JSON name of the offending field ("" for the whole event).
	Field string `json:"field"`
	// Message says what is wrong.
	Message string `json:"message"`
}
