// Package grpcecho is the Echo service for grpc-go, generated from
// grpcecho.proto by protoc-gen-go and protoc-gen-go-grpc (make proto). It
// carries myrpc's own EchoRequest and EchoReply messages, so grpc-go and the
// myrpc stages send the same bytes in the benchmarks.
package grpcecho
