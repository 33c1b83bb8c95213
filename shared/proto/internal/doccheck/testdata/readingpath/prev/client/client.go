// Package client is a fixture: the client of the stage before.
package client

// Client calls a server.
type Client struct {
	addr string
}

// Invoke makes one call.
func (c *Client) Invoke() error { return nil }
