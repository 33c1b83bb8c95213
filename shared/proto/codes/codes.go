// Package codes defines the status codes that myrpc calls end with. The
// numbers are gRPC's, so a reader who knows gRPC reads them without a table.
package codes

import "strconv"

// Code is the status of a finished call. It travels in ResponseMeta.code.
type Code uint32

// The codes myrpc uses. The gaps are gRPC codes that myrpc never sends; a
// Code holding one of them still prints and compares correctly.
const (
	// OK means the call succeeded.
	OK Code = 0
	// Canceled means the caller cancelled the call.
	Canceled Code = 1
	// Unknown is the code of a handler error that carries no code.
	Unknown Code = 2
	// InvalidArgument means the request could not be decoded or was refused
	// as malformed.
	InvalidArgument Code = 3
	// DeadlineExceeded means the call's deadline passed before it finished.
	DeadlineExceeded Code = 4
	// NotFound means a handler could not find what the request names.
	NotFound Code = 5
	// AlreadyExists means what the request would create exists already.
	AlreadyExists Code = 6
	// PermissionDenied means the caller, known, may not do this.
	PermissionDenied Code = 7
	// ResourceExhausted means a limit was hit: a frame over the maximum size,
	// a full pool.
	ResourceExhausted Code = 8
	// FailedPrecondition means the system is not in the state the call
	// needs; retrying will not help until it is.
	FailedPrecondition Code = 9
	// Aborted means the call was abandoned, as a transaction that lost a
	// conflict is.
	Aborted Code = 10
	// OutOfRange means the request asked for something past a valid range.
	OutOfRange Code = 11
	// Unimplemented means the server has no such service or method.
	Unimplemented Code = 12
	// Internal means the framework itself failed, for example a handler panic
	// or a response that does not decode.
	Internal Code = 13
	// Unavailable means the request was not run: the server could not be
	// reached, was shutting down, or the connection broke. It is the one code
	// a client may retry without asking whether the call is idempotent, when
	// a server sent it.
	Unavailable Code = 14
	// DataLoss means data was lost or corrupted beyond recovery.
	DataLoss Code = 15
	// Unauthenticated means the call carries no valid credentials: an
	// interceptor that checks them answers it.
	Unauthenticated Code = 16
)

var names = map[Code]string{
	OK:                 "OK",
	Canceled:           "Canceled",
	Unknown:            "Unknown",
	InvalidArgument:    "InvalidArgument",
	DeadlineExceeded:   "DeadlineExceeded",
	NotFound:           "NotFound",
	AlreadyExists:      "AlreadyExists",
	PermissionDenied:   "PermissionDenied",
	ResourceExhausted:  "ResourceExhausted",
	FailedPrecondition: "FailedPrecondition",
	Aborted:            "Aborted",
	OutOfRange:         "OutOfRange",
	Unimplemented:      "Unimplemented",
	Internal:           "Internal",
	Unavailable:        "Unavailable",
	DataLoss:           "DataLoss",
	Unauthenticated:    "Unauthenticated",
}

// String returns the code's name, e.g. "DeadlineExceeded", or "Code(n)" for
// a number gRPC does not define.
func (c Code) String() string {
	if s, ok := names[c]; ok {
		return s
	}
	return "Code(" + strconv.FormatUint(uint64(c), 10) + ")"
}
