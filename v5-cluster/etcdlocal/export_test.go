package etcdlocal

// ChoosePorts replaces how a start chooses its ports, and returns what
// puts it back.
func ChoosePorts(f func(n int, free func(int) ([]int, error)) ([]int, error)) (restore func()) {
	choosePorts = func(n int) ([]int, error) { return f(n, freePorts) }
	return func() { choosePorts = freePorts }
}
