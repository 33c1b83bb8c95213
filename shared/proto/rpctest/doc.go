// Package rpctest is the conformance suite every stage runs: end-to-end
// calls, and one test per row of the reliability table (bad input and
// faults), written once and run against any stage through a Stage factory.
//
// A stage's tests call it like this:
//
//	func TestConformance(t *testing.T) { rpctest.RunConformance(t, stage) }
//	func TestReliability(t *testing.T) { rpctest.RunReliability(t, stage) }
//
// The suite speaks the wire protocol itself, through its own small frame
// writer and reader, so that it can send what no well-behaved client would:
// lengths near 4 GiB, the wrong magic, a header dripped a byte at a time.
package rpctest
