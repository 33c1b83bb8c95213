// Package config reads rpc.yaml, the file that names a server's services and
// their addresses and holds the settings of the server and the client.
//
// A missing setting means "use the default"; the defaults live with the
// options of packages server and client, where their doc comments state
// them. So does a zero one (0, 0s), with one exception:
// registry.deregister_wait, where 0s means no wait (a Registry's
// DeregisterWait is a pointer, nil when the key is missing). Unknown keys
// are errors, so a misspelt setting does not pass silently.
package config
