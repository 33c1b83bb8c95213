// Package codec reads and writes myrpc frames: a 16-byte header, then a
// protobuf meta message, then a protobuf body.
//
//	0       2     3     4              8              12             16
//	+-------+-----+-----+--------------+--------------+--------------+
//	| magic | ver | type| sequence id  | meta length  | body length  |
//	+-------+-----+-----+--------------+--------------+--------------+
//
// All integers are big-endian. A reader checks the header against the
// limits before it allocates anything, so sixteen hostile bytes cannot make
// it reserve gigabytes. docs/protocol.md describes the format for readers.
package codec
