package rpc

import "context"

// Metadata is the free-form key/value data a request or response carries in
// its meta (RequestMeta.metadata, ResponseMeta.metadata).
type Metadata map[string]string

type outgoingKey struct{}
type incomingKey struct{}

// WithOutgoingMetadata returns a context whose calls send md with the
// request. A client reads it with OutgoingMetadata.
func WithOutgoingMetadata(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, outgoingKey{}, md)
}

// OutgoingMetadata returns the metadata that calls made with ctx send, or
// nil.
func OutgoingMetadata(ctx context.Context) Metadata {
	md, _ := ctx.Value(outgoingKey{}).(Metadata)
	return md
}

// WithIncomingMetadata returns a context that carries the metadata of the
// request being handled. Servers call it before they run a handler.
func WithIncomingMetadata(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, incomingKey{}, md)
}

// IncomingMetadata returns the metadata the caller sent with the request a
// handler is running, or nil.
func IncomingMetadata(ctx context.Context) Metadata {
	md, _ := ctx.Value(incomingKey{}).(Metadata)
	return md
}

// ConnectionKey and ConnectionClose mark a response after which the server
// closes the connection: ResponseMeta.metadata["connection"] = "close", as
// in HTTP/1. A client sends nothing more on that connection. A V1 server
// marks every response, since it serves one request per connection; later
// servers mark the responses they close after, such as the refusal of a
// frame over the size limit or of a request that arrives during Shutdown.
const (
	ConnectionKey   = "connection"
	ConnectionClose = "close"
)

// Closing reports whether a response's metadata says that the server
// closes the connection after it.
func Closing(md map[string]string) bool {
	return md[ConnectionKey] == ConnectionClose
}

// NotRunKey and NotRunValue mark the answer to a request that the server
// did not run, and would not have run whoever sent it: a V5 server marks
// the requests it refuses while it drains. A client may send such a
// request to another server at once, whatever its retry policy. Code 14
// alone does not say as much: a V1 server marks every response
// connection: close, and a handler may answer 14 itself.
const (
	NotRunKey   = "not-run"
	NotRunValue = "true"
)

// NotRun reports whether a response's metadata says that the server did
// not run the request.
func NotRun(md map[string]string) bool {
	return md[NotRunKey] == NotRunValue
}
