// Package status is myrpc's one error type: an error that carries a
// codes.Code and a message. Handlers return it to choose the code a caller
// sees; callers get it back from every failed call and read it with Code or
// errors.As.
package status

import (
	"context"
	"errors"
	"fmt"

	"myrpc/shared/proto/codes"
)

// Error is a failed call's status. Every error a myrpc client returns is, or
// wraps, an *Error.
type Error struct {
	code  codes.Code
	msg   string
	cause error
}

// New returns an error with the code and message. It never returns nil; for
// codes.OK use a nil error instead.
func New(c codes.Code, msg string) error {
	return &Error{code: c, msg: msg}
}

// Errorf returns an error with the code and a formatted message. A %w verb
// wraps its argument, so errors.Is and errors.As see through the result;
// with several %w verbs they see all the arguments.
func Errorf(c codes.Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	var cause error
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		cause = u.Unwrap()
	case interface{ Unwrap() []error }:
		// Several %w: keep fmt's error, which unwraps to each of them.
		cause = err
	}
	return &Error{code: c, msg: err.Error(), cause: cause}
}

// Code returns the error's code; OK for a nil *Error.
func (e *Error) Code() codes.Code {
	if e == nil {
		return codes.OK
	}
	return e.code
}

// Message returns the error's message; "" for a nil *Error.
func (e *Error) Message() string {
	if e == nil {
		return ""
	}
	return e.msg
}

// Error formats the status the way gRPC does, so logs look familiar.
func (e *Error) Error() string {
	return fmt.Sprintf("rpc error: code = %s desc = %s", e.Code(), e.Message())
}

// Unwrap returns the error the status was made from, if any, so that
// errors.Is(err, context.DeadlineExceeded) works on a client's error.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.cause
}

// FromError returns the *Error inside err. For a nil err it returns nil and
// true. For a context error it returns Canceled or DeadlineExceeded. For any
// other error it returns Unknown with err's text, and false.
func FromError(err error) (*Error, bool) {
	if err == nil {
		return nil, true
	}
	var se *Error
	if errors.As(err, &se) {
		return se, true
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{code: codes.DeadlineExceeded, msg: err.Error(), cause: err}, true
	case errors.Is(err, context.Canceled):
		return &Error{code: codes.Canceled, msg: err.Error(), cause: err}, true
	}
	return &Error{code: codes.Unknown, msg: err.Error(), cause: err}, false
}

// Code returns the code of err: OK for nil, the code of an *Error anywhere
// in err's chain, Canceled or DeadlineExceeded for the context errors, and
// Unknown for anything else.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	se, _ := FromError(err)
	return se.Code()
}
