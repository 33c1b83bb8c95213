// Package pool is a fixture: a package the later stage adds.
package pool

// Config sizes a Pool.
type Config struct {
	MaxConns int
}

// Pool holds connections.
type Pool[T any] struct {
	conns []T
}

// New returns a Pool.
func New[T any](Config) *Pool[T] { return &Pool[T]{} }

// Get takes a connection.
func (p *Pool[T]) Get() (t T) { return t }
