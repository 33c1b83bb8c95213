package registry

import "io"

// ResolveAfter is Resolve with a watch that starts after rev, whatever
// revision the first read had, as a watch does that resumes after etcd
// was away.
func (r *Resolver) ResolveAfter(service string, rev int64, update func([]string)) (io.Closer, error) {
	return r.resolve(service, update, rev)
}
