package client

import "testing"

func TestNothing(t *testing.T) {}
