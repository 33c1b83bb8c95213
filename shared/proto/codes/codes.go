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
	// ResourceExhausted means a limit was hit: a frame over the maximum size,
	// a full pool.
	ResourceExhausted Code = 8
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
)

var names = map[Code]string{
	OK:                "OK",
	Canceled:          "Canceled",
	Unknown:           "Unknown",
	InvalidArgument:   "InvalidArgument",
	DeadlineExceeded:  "DeadlineExceeded",
	NotFound:          "NotFound",
	6:                 "AlreadyExists",
	7:                 "PermissionDenied",
	ResourceExhausted: "ResourceExhausted",
	9:                 "FailedPrecondition",
	10:                "Aborted",
	11:                "OutOfRange",
	Unimplemented:     "Unimplemented",
	Internal:          "Internal",
	Unavailable:       "Unavailable",
	15:                "DataLoss",
	16:                "Unauthenticated",
}

// String returns the code's name, e.g. "DeadlineExceeded", or "Code(n)" for
// a number gRPC does not define.
func (c Code) String() string {
	if s, ok := names[c]; ok {
		return s
	}
	return "Code(" + strconv.FormatUint(uint64(c), 10) + ")"
}
