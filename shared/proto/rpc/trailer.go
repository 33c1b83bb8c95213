package rpc

import (
	"context"
	"errors"
	"maps"
	"sync"
)

// Errors of SetTrailer.
var (
	// ErrNoTrailer: the context is not that of a call being handled by a
	// server that sends response metadata (V5 on).
	ErrNoTrailer = errors.New("rpc: SetTrailer: the context carries no response of a server that sends metadata")
	// ErrTrailerSent: the handler has returned, and its response has been
	// made without this metadata.
	ErrTrailerSent = errors.New("rpc: SetTrailer: the response has already been made")
	// ErrReservedKey: the metadata holds ConnectionKey or NotRunKey, which
	// are the server's own (the connection: close and not-run marks).
	ErrReservedKey = errors.New(`rpc: SetTrailer: the keys "` + ConnectionKey + `" and "` + NotRunKey + `" are reserved for the server`)
)

// ServerTrailer gathers the metadata a call's handler, and the interceptors
// around it, set for its response (SetTrailer). A server that sends
// response metadata puts one into each call's context with
// WithServerTrailer and, once the handler has returned, sends what Take
// returns in the response's ResponseMeta.metadata. Its methods are safe
// for concurrent use.
type ServerTrailer struct {
	// mu protects md and taken.
	mu    sync.Mutex
	md    Metadata
	taken bool
}

type trailerKey struct{}

// WithServerTrailer returns a context in which SetTrailer adds to t.
func WithServerTrailer(ctx context.Context, t *ServerTrailer) context.Context {
	return context.WithValue(ctx, trailerKey{}, t)
}

// Take returns the metadata set so far, or nil, and makes every later
// SetTrailer fail with ErrTrailerSent.
func (t *ServerTrailer) Take() Metadata {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.taken = true
	return t.md
}

// SetTrailer adds md to the response metadata of the call that ctx
// belongs to, as grpc-go's SetTrailer does; a key set twice keeps its last
// value. A unary response carries one metadata map, sent with the response
// once the handler has returned, whether it succeeded or not; the caller
// reads it with the Trailer call option. The keys "connection"
// (ConnectionKey) and "not-run" (NotRunKey) are the server's, and md may
// not hold them. It fails if
// the server does not send response metadata (stages V1 to V4 do not),
// and once the handler has returned.
func SetTrailer(ctx context.Context, md Metadata) error {
	t, _ := ctx.Value(trailerKey{}).(*ServerTrailer)
	if t == nil {
		return ErrNoTrailer
	}
	if _, ok := md[ConnectionKey]; ok {
		return ErrReservedKey
	}
	if _, ok := md[NotRunKey]; ok {
		return ErrReservedKey
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.taken {
		return ErrTrailerSent
	}
	if len(md) == 0 {
		return nil
	}
	if t.md == nil {
		t.md = make(Metadata, len(md))
	}
	maps.Copy(t.md, md)
	return nil
}

// TrailerCallOption is the call option Trailer returns. A client that
// receives response metadata (V5 on) stores the metadata of the call's
// response in *TrailerAddr before the call returns; older clients ignore
// the option, and *TrailerAddr is left as it was.
type TrailerCallOption struct {
	TrailerAddr *Metadata
}

// IsCallOption marks TrailerCallOption as a CallOption.
func (TrailerCallOption) IsCallOption() {}

// Trailer asks for the metadata of the call's response, which its handler
// set with SetTrailer: it is stored in *md when the call ends (nil if the
// response carried none, or no response came), as grpc-go's Trailer does.
func Trailer(md *Metadata) CallOption {
	return TrailerCallOption{TrailerAddr: md}
}
