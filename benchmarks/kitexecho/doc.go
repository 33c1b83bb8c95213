// Package kitexecho holds the Echo service for CloudWeGo kitex, a baseline
// of the benchmarks: kitexecho.proto, and the code kitex's own generator
// (the kitex command, make proto) makes from it in kitex_gen/. The
// generator parses the proto itself, with prutal, and needs no protoc.
//
// kitex_gen/kitexecho holds the messages, EchoRequest and EchoReply, and
// the handler interface Echo; kitex_gen/kitexecho/echo the service info,
// the client and the server. The messages are kitex's own Go structs,
// encoded by prutal, not google.golang.org/protobuf messages like those of
// myrpc's echo package; the proto restates echo.proto's fields, numbers
// and types, so both encode the same bytes on the wire.
package kitexecho
