package server

import "slices"

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
//   - reactors: the epoll loops reading the connections, one set per
//     listener (0 where the server runs a goroutine per connection)
//   - frames_per_write: the response frames each writev carried, on
//     average (present once a writev has been made)
//   - frames_per_read: the request frames each read brought in, on
//     average (present once a read has been made)
func (s *Server) Stats() map[string]float64 {
	s.mu.Lock()
	open := len(s.conns)
	engines := slices.Clone(s.engines)
	s.mu.Unlock()
	var reads, writes, framesOut uint64
	reactors := 0
	for _, e := range engines {
		st := e.Stats()
		open += st.Conns
		reactors += st.Loops
		reads += st.Reads
		writes += st.Writes
		framesOut += st.FramesOut
	}
	out := make(map[string]float64)
	out["conns_accepted"] = float64(s.connID.Load())
	out["conns_open"] = float64(open)
	out["calls"] = float64(s.calls.Load())
	out["workers"] = float64(max(s.opts.workers, 0))
	out["workers_busy_peak"] = float64(s.peakWorkers.Load())
	out["reactors"] = float64(reactors)
	if writes > 0 {
		out["frames_per_write"] = float64(framesOut) / float64(writes)
	}
	if reads > 0 {
		out["frames_per_read"] = float64(s.framesIn.Load()) / float64(reads)
	}
	return out
}
