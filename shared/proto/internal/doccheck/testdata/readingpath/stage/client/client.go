// Package client is a fixture: the client of the later stage.
package client

import (
	"time"

	"example.com/pool"
)

const defaultTimeout = time.Second

// Options configures a Client.
type Options struct {
	Timeout time.Duration
	*pool.Config
}

// Caller is anything that calls.
type Caller interface {
	Call() error
}

// Client calls a server through a pool.
type Client struct {
	addr string
	opts Options
}

// New returns a Client.
func New(addr string, opts Options) *Client { return &Client{addr: addr, opts: opts} }

// Invoke makes one call.
func (c *Client) Invoke() error { return dial(c.addr) }

func dial(string) error { return nil }
