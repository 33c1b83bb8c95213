package status_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/status"
)

// pathError is an error type of its own, for errors.As.
type pathError struct{ path string }

func (e *pathError) Error() string { return "bad path " + e.path }

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		code     codes.Code
		msg      string
		wantText string
	}{
		{name: "not found", code: codes.NotFound, msg: "no such item", wantText: "rpc error: code = NotFound desc = no such item"},
		{name: "empty message", code: codes.Internal, msg: "", wantText: "rpc error: code = Internal desc = "},
		{name: "gap code", code: 7, msg: "go away", wantText: "rpc error: code = PermissionDenied desc = go away"},
		{name: "unknown number", code: 99, msg: "odd", wantText: "rpc error: code = Code(99) desc = odd"},
		// New does not format: a % in the message stays as it is.
		{name: "percent", code: codes.InvalidArgument, msg: "100% %w", wantText: "rpc error: code = InvalidArgument desc = 100% %w"},
		// OK is allowed, if pointless; the result is still a non-nil error.
		{name: "ok code", code: codes.OK, msg: "fine", wantText: "rpc error: code = OK desc = fine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := status.New(tt.code, tt.msg)
			if err == nil {
				t.Fatal("New returned nil")
			}
			if got := err.Error(); got != tt.wantText {
				t.Errorf("Error() = %q, want %q", got, tt.wantText)
			}
			var se *status.Error
			if !errors.As(err, &se) {
				t.Fatalf("errors.As(%v, *status.Error) = false", err)
			}
			if se.Code() != tt.code || se.Message() != tt.msg {
				t.Errorf("Code, Message = %v, %q; want %v, %q", se.Code(), se.Message(), tt.code, tt.msg)
			}
			if got := status.Code(err); got != tt.code {
				t.Errorf("status.Code = %v, want %v", got, tt.code)
			}
			if u := errors.Unwrap(err); u != nil {
				t.Errorf("Unwrap = %v, want nil", u)
			}
		})
	}
}

func TestErrorf(t *testing.T) {
	errInner := errors.New("disk full")
	errOther := errors.New("quota")
	pe := &pathError{path: "/tmp/x"}
	errStat := fmt.Errorf("stat: %w", pe)
	tests := []struct {
		name    string
		code    codes.Code
		format  string
		args    []any
		wantMsg string
		// wantIs must all be found by errors.Is; wantNotIs must not.
		wantIs    []error
		wantNotIs []error
		// wantPath is the path errors.As must find, if any.
		wantPath string
		// wantUnwrap is what errors.Unwrap returns; with several %w it is
		// fmt's error holding them all, which only wantIs checks.
		wantUnwrap error
		severalW   bool
	}{
		{
			name:    "no args",
			code:    codes.Internal,
			format:  "boom",
			wantMsg: "boom",
		},
		{
			name:    "verbs",
			code:    codes.InvalidArgument,
			format:  "field %q: %d > %d",
			args:    []any{"size", 10, 4},
			wantMsg: `field "size": 10 > 4`,
		},
		{
			name:      "%v does not wrap",
			code:      codes.Internal,
			format:    "write: %v",
			args:      []any{errInner},
			wantMsg:   "write: disk full",
			wantNotIs: []error{errInner},
		},
		{
			name:       "%w wraps",
			code:       codes.ResourceExhausted,
			format:     "write: %w",
			args:       []any{errInner},
			wantMsg:    "write: disk full",
			wantIs:     []error{errInner},
			wantUnwrap: errInner,
		},
		{
			name:       "%w of a context error",
			code:       codes.Unavailable,
			format:     "dial: %w",
			args:       []any{context.DeadlineExceeded},
			wantMsg:    "dial: context deadline exceeded",
			wantIs:     []error{context.DeadlineExceeded},
			wantUnwrap: context.DeadlineExceeded,
		},
		{
			name:       "%w of a typed error",
			code:       codes.NotFound,
			format:     "open: %w",
			args:       []any{errStat},
			wantMsg:    "open: stat: bad path /tmp/x",
			wantIs:     []error{pe},
			wantPath:   "/tmp/x",
			wantUnwrap: errStat,
		},
		{
			name:     "two %w",
			code:     codes.Internal,
			format:   "%w and %w",
			args:     []any{errInner, errOther},
			wantMsg:  "disk full and quota",
			wantIs:   []error{errInner, errOther},
			severalW: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := status.Errorf(tt.code, tt.format, tt.args...)
			var se *status.Error
			if !errors.As(err, &se) {
				t.Fatalf("errors.As(%v, *status.Error) = false", err)
			}
			if se.Code() != tt.code {
				t.Errorf("Code = %v, want %v", se.Code(), tt.code)
			}
			if se.Message() != tt.wantMsg {
				t.Errorf("Message = %q, want %q", se.Message(), tt.wantMsg)
			}
			if want := fmt.Sprintf("rpc error: code = %s desc = %s", tt.code, tt.wantMsg); err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if got := status.Code(err); got != tt.code {
				t.Errorf("status.Code = %v, want %v", got, tt.code)
			}
			for _, target := range tt.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) = false, want true", target)
				}
			}
			for _, target := range tt.wantNotIs {
				if errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) = true, want false", target)
				}
			}
			if u := errors.Unwrap(err); !tt.severalW && u != tt.wantUnwrap {
				t.Errorf("errors.Unwrap = %v, want %v", u, tt.wantUnwrap)
			}
			var got *pathError
			if found := errors.As(err, &got); found != (tt.wantPath != "") || (found && got.path != tt.wantPath) {
				t.Errorf("errors.As(err, *pathError) = %v, %v; want a *pathError with path %q", found, got, tt.wantPath)
			}
		})
	}
}

func TestFromError(t *testing.T) {
	plain := errors.New("plain failure")
	notFound := status.New(codes.NotFound, "gone")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		err      error
		wantNil  bool
		wantOK   bool
		wantCode codes.Code
		wantMsg  string
		// wantSame means FromError returns the *Error inside err, not a new one.
		wantSame error
		// wantIs must be found by errors.Is in the result.
		wantIs error
	}{
		{name: "nil", err: nil, wantNil: true, wantOK: true, wantCode: codes.OK},
		{name: "status", err: notFound, wantOK: true, wantCode: codes.NotFound, wantMsg: "gone", wantSame: notFound},
		{
			name:     "wrapped status",
			err:      fmt.Errorf("call Hello: %w", notFound),
			wantOK:   true,
			wantCode: codes.NotFound,
			wantMsg:  "gone",
			wantSame: notFound,
		},
		{
			name:     "twice wrapped status",
			err:      fmt.Errorf("retry: %w", fmt.Errorf("call Hello: %w", notFound)),
			wantOK:   true,
			wantCode: codes.NotFound,
			wantMsg:  "gone",
			wantSame: notFound,
		},
		{
			name:     "status in a join",
			err:      errors.Join(plain, notFound),
			wantOK:   true,
			wantCode: codes.NotFound,
			wantMsg:  "gone",
			wantSame: notFound,
		},
		{
			// A status wins over the context error it wraps: the handler
			// chose the code.
			name:     "status wrapping a context error",
			err:      status.Errorf(codes.Unavailable, "dial: %w", context.DeadlineExceeded),
			wantOK:   true,
			wantCode: codes.Unavailable,
			wantMsg:  "dial: context deadline exceeded",
			wantIs:   context.DeadlineExceeded,
		},
		{
			name:     "deadline exceeded",
			err:      context.DeadlineExceeded,
			wantOK:   true,
			wantCode: codes.DeadlineExceeded,
			wantMsg:  "context deadline exceeded",
			wantIs:   context.DeadlineExceeded,
		},
		{
			name:     "wrapped deadline exceeded",
			err:      fmt.Errorf("read frame: %w", context.DeadlineExceeded),
			wantOK:   true,
			wantCode: codes.DeadlineExceeded,
			wantMsg:  "read frame: context deadline exceeded",
			wantIs:   context.DeadlineExceeded,
		},
		{
			name:     "canceled",
			err:      context.Canceled,
			wantOK:   true,
			wantCode: codes.Canceled,
			wantMsg:  "context canceled",
			wantIs:   context.Canceled,
		},
		{
			name:     "a cancelled context's error",
			err:      ctx.Err(),
			wantOK:   true,
			wantCode: codes.Canceled,
			wantMsg:  "context canceled",
			wantIs:   context.Canceled,
		},
		{name: "plain", err: plain, wantOK: false, wantCode: codes.Unknown, wantMsg: "plain failure", wantIs: plain},
		{
			name:     "wrapped plain",
			err:      fmt.Errorf("read: %w", io.ErrUnexpectedEOF),
			wantOK:   false,
			wantCode: codes.Unknown,
			wantMsg:  "read: unexpected EOF",
			wantIs:   io.ErrUnexpectedEOF,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se, ok := status.FromError(tt.err)
			if ok != tt.wantOK {
				t.Errorf("ok = %v, want %v", ok, tt.wantOK)
			}
			if got := status.Code(tt.err); got != tt.wantCode {
				t.Errorf("status.Code = %v, want %v", got, tt.wantCode)
			}
			if tt.wantNil {
				if se != nil {
					t.Errorf("FromError = %v, want nil", se)
				}
				return
			}
			if se == nil {
				t.Fatal("FromError returned nil")
			}
			if se.Code() != tt.wantCode || se.Message() != tt.wantMsg {
				t.Errorf("Code, Message = %v, %q; want %v, %q", se.Code(), se.Message(), tt.wantCode, tt.wantMsg)
			}
			if tt.wantSame != nil && error(se) != tt.wantSame {
				t.Errorf("FromError returned a new *Error %p, want the one in the chain %p", se, tt.wantSame)
			}
			if tt.wantIs != nil && !errors.Is(se, tt.wantIs) {
				t.Errorf("errors.Is(FromError(err), %v) = false, want true", tt.wantIs)
			}
		})
	}
}

func TestErrorsAsThroughWrapping(t *testing.T) {
	// A client wraps the status it got; a caller further up still finds it.
	err := fmt.Errorf("load profile: %w", status.Errorf(codes.NotFound, "user %d", 42))
	var se *status.Error
	if !errors.As(err, &se) {
		t.Fatalf("errors.As(%v, *status.Error) = false", err)
	}
	if se.Code() != codes.NotFound || se.Message() != "user 42" {
		t.Errorf("found %v", se)
	}
	if got, want := err.Error(), "load profile: rpc error: code = NotFound desc = user 42"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestTypedNilError(t *testing.T) {
	var e *status.Error
	var err error = e
	if got := status.Code(err); got != codes.OK {
		t.Fatalf("Code(typed nil) = %v, want OK", got)
	}
	if e.Message() != "" || e.Unwrap() != nil {
		t.Fatal("a nil *Error has a message or a cause")
	}
	if got := e.Error(); got != "rpc error: code = OK desc = " {
		t.Fatalf("Error() = %q", got)
	}
}
