// Package etcdlocal runs etcd inside this process: one member, or a
// cluster of several, on 127.0.0.1 with ports chosen free, its data in a
// temporary directory that Close removes: for tests, and for a demo that
// needs a registry on a machine without etcd.
//
// A member can be stopped and started again with its data and its
// addresses, so that a test can take etcd away from its clients and give
// it back. etcd logs through zap; etcdlocal passes what etcd logs at the
// chosen level (Default: Error) to a slog.Logger.
//
// The members are made for speed, not for durability: they never fsync
// (embed's UnsafeNoFsync), which is what makes them start in a fraction of
// a second on a busy machine. Do not keep data in them that must survive
// the machine.
package etcdlocal
