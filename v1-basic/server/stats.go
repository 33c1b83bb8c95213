package server

// Stats returns the server's counters by name, for a program to print or
// publish (the demo server serves them as JSON at its -stats-addr):
//
//   - conns_accepted: the connections accepted since the server started
//   - conns_open: the connections open now
//   - calls: the requests handed to a handler, or answered code 12 for
//     naming a method the server lacks
func (s *Server) Stats() map[string]float64 {
	s.mu.Lock()
	open := len(s.conns)
	s.mu.Unlock()
	out := make(map[string]float64)
	out["conns_accepted"] = float64(s.connID.Load())
	out["conns_open"] = float64(open)
	out["calls"] = float64(s.calls.Load())
	return out
}
