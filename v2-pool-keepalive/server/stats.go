package server

// Stats returns the server's counters by name, for a program to print or
// publish (the demo server serves them as JSON at its -stats-addr):
//
//   - conns_accepted: the connections accepted since the server started
//   - conns_open: the connections open now
//   - calls: the requests handed to a handler, or answered code 12 for
//     naming a method the server lacks
//   - workers: the size of the pool that runs the handlers (WithWorkers;
//     0: no bound)
//   - workers_busy_peak: the most workers that have been running calls
//     at once
func (s *Server) Stats() map[string]float64 {
	s.mu.Lock()
	open := len(s.conns)
	s.mu.Unlock()
	out := make(map[string]float64)
	out["conns_accepted"] = float64(s.connID.Load())
	out["conns_open"] = float64(open)
	out["calls"] = float64(s.calls.Load())
	out["workers"] = float64(max(s.opts.workers, 0))
	out["workers_busy_peak"] = float64(s.peakWorkers.Load())
	return out
}
