package codes_test

import (
	"fmt"
	"testing"

	"myrpc/shared/proto/codes"
)

func TestString(t *testing.T) {
	tests := []struct {
		code codes.Code
		want string
	}{
		{codes.OK, "OK"},
		{codes.Canceled, "Canceled"},
		{codes.Unknown, "Unknown"},
		{codes.InvalidArgument, "InvalidArgument"},
		{codes.DeadlineExceeded, "DeadlineExceeded"},
		{codes.NotFound, "NotFound"},
		{codes.ResourceExhausted, "ResourceExhausted"},
		{codes.Unimplemented, "Unimplemented"},
		{codes.Internal, "Internal"},
		{codes.Unavailable, "Unavailable"},
		// The codes only handlers and interceptors send, at gRPC's
		// numbers.
		{6, "AlreadyExists"},
		{7, "PermissionDenied"},
		{9, "FailedPrecondition"},
		{10, "Aborted"},
		{11, "OutOfRange"},
		{15, "DataLoss"},
		{16, "Unauthenticated"},
		{codes.AlreadyExists, "AlreadyExists"},
		{codes.PermissionDenied, "PermissionDenied"},
		{codes.FailedPrecondition, "FailedPrecondition"},
		{codes.Aborted, "Aborted"},
		{codes.OutOfRange, "OutOfRange"},
		{codes.DataLoss, "DataLoss"},
		{codes.Unauthenticated, "Unauthenticated"},
		// Numbers gRPC does not define.
		{17, "Code(17)"},
		{99, "Code(99)"},
		{1<<32 - 1, "Code(4294967295)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.code.String(); got != tt.want {
				t.Errorf("Code(%d).String() = %q, want %q", uint32(tt.code), got, tt.want)
			}
			// %v and %s go through String, as log lines and status
			// messages do.
			if got := fmt.Sprintf("%v", tt.code); got != tt.want {
				t.Errorf("%%v of Code(%d) = %q, want %q", uint32(tt.code), got, tt.want)
			}
		})
	}
}

// TestNumbers pins the numbers: they travel in ResponseMeta.code, so they
// must be gRPC's and must never change.
func TestNumbers(t *testing.T) {
	tests := []struct {
		code codes.Code
		want uint32
	}{
		{codes.OK, 0},
		{codes.Canceled, 1},
		{codes.Unknown, 2},
		{codes.InvalidArgument, 3},
		{codes.DeadlineExceeded, 4},
		{codes.NotFound, 5},
		{codes.ResourceExhausted, 8},
		{codes.Unimplemented, 12},
		{codes.Internal, 13},
		{codes.Unavailable, 14},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			if uint32(tt.code) != tt.want {
				t.Errorf("%v = %d, want %d", tt.code, uint32(tt.code), tt.want)
			}
		})
	}
}
