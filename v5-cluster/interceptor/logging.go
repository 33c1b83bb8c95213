package interceptor

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
)

// ServerLogging returns a server interceptor that logs every call once it
// has been handled, with the message "rpc: served" and the attributes
// method (the full method name), code (the status code's name) and
// duration; a failed call adds err. A call that succeeded is logged at
// Debug and one that failed at Warn, so that a logger at Info shows the
// failures alone. A nil log means slog.Default().
func ServerLogging(log *slog.Logger) rpc.UnaryServerInterceptor {
	return func(ctx context.Context, req proto.Message, info *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (proto.Message, error) {
		start := time.Now()
		reply, err := handler(ctx, req)
		logCall(ctx, orDefault(log), "rpc: served", info.FullMethod, err, time.Since(start))
		return reply, err
	}
}

// ClientLogging returns a client interceptor that logs every call once it
// has ended, retries included, as ServerLogging does, with the message
// "rpc: called".
func ClientLogging(log *slog.Logger) rpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply proto.Message, cc rpc.Invoker, invoker rpc.UnaryInvoker, opts ...rpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, opts...)
		logCall(ctx, orDefault(log), "rpc: called", method, err, time.Since(start))
		return err
	}
}

func orDefault(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.Default()
	}
	return log
}

// logCall writes the one record of a call.
func logCall(ctx context.Context, log *slog.Logger, msg, method string, err error, d time.Duration) {
	code := status.Code(err)
	if code == codes.OK {
		log.LogAttrs(ctx, slog.LevelDebug, msg,
			slog.String("method", method), slog.String("code", code.String()), slog.Duration("duration", d))
		return
	}
	log.LogAttrs(ctx, slog.LevelWarn, msg,
		slog.String("method", method), slog.String("code", code.String()), slog.Duration("duration", d),
		slog.String("err", err.Error()))
}
