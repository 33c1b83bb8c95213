package cpuprof

import "strings"

// The categories a sample's time goes to (see Category).
const (
	CatWrite   = "syscall: write"
	CatRead    = "syscall: read"
	CatEpoll   = "syscall: epoll"
	CatConn    = "syscall: socket, connect, accept, close"
	CatSyscall = "syscall: other"
	CatFutex   = "futex: threads sleep and wake"
	CatGC      = "runtime: GC"
	CatMalloc  = "runtime: malloc"
	CatSched   = "runtime: scheduler, channels, locks"
	CatRuntime = "runtime: other"
	CatProto   = "protobuf encode/decode"
	CatMyrpc   = "myrpc"
	CatPool    = "ants goroutine pool"
	CatNet     = "net, poll (Go)"
	CatSync    = "sync, context, time (Go)"
	CatHarness = "benchmark harness"
	CatOther   = "other"
)

// Categories are the categories in the order tables show them, each with
// the short key by which the report's expressions name it.
var Categories = []struct{ Key, Name string }{
	{"write", CatWrite},
	{"read", CatRead},
	{"epoll", CatEpoll},
	{"conn", CatConn},
	{"syscall", CatSyscall},
	{"futex", CatFutex},
	{"sched", CatSched},
	{"malloc", CatMalloc},
	{"gc", CatGC},
	{"runtime", CatRuntime},
	{"net", CatNet},
	{"sync", CatSync},
	{"proto", CatProto},
	{"myrpc", CatMyrpc},
	{"pool", CatPool},
	{"harness", CatHarness},
	{"other", CatOther},
}

// IsSyscallCategory reports whether a category is time in system calls,
// futex included.
func IsSyscallCategory(name string) bool {
	return strings.HasPrefix(name, "syscall: ") || name == CatFutex
}

// Category returns the kind of work a sample's stack, leaf first, was
// doing, by the names of its functions:
//
//   - a system call, when the running function is one of the system call
//     layer (packages syscall, internal/runtime/syscall, x/sys/unix, and
//     the runtime's entry to and exit from a call): epoll, socket set-up
//     and close, write or read, by the first function on the way to the
//     root whose name says which (an epoll or netpoll; a socket, connect,
//     accept, close, sockopt or dial; a write, writev or flush; a read);
//     a futex, with which the runtime puts threads to sleep and wakes
//     them, apart;
//   - the runtime's work: the garbage collector, allocation, or the
//     scheduler with channels and locks, by the runtime functions on top
//     of the stack; the runtime's own goroutines and threads that match
//     none of these are runtime: other;
//   - otherwise the package of the first function that is not the
//     runtime's (the caller of a memmove or a map lookup): protobuf,
//     myrpc's own code, the ants pool, Go's net and poll, sync, context
//     and time, the benchmark harness.
func Category(stack []string) string {
	if len(stack) == 0 {
		return CatOther
	}
	if isSyscall(stack[0]) {
		if stack[0] == "runtime.futex" {
			return CatFutex
		}
		for _, f := range stack[1:] {
			if c := syscallKind(f); c != "" {
				return c
			}
		}
		return CatSyscall
	}
	// The runtime's frames at the top of the stack, and the first
	// function below them that is not the runtime's.
	top := 0
	for top < len(stack) && isRuntime(stack[top]) {
		top++
	}
	if top > 0 {
		rt := stack[:top]
		switch {
		case anyOf(rt, isGC):
			return CatGC
		case anyOf(rt, isMalloc):
			return CatMalloc
		case anyOf(rt, isSched):
			return CatSched
		case top == len(stack):
			return CatRuntime
		}
	}
	if top == len(stack) {
		return CatRuntime
	}
	return packageCategory(pkgOf(stack[top]))
}

func anyOf(frames []string, f func(string) bool) bool {
	for _, s := range frames {
		if f(s) {
			return true
		}
	}
	return false
}

// syscallKind returns the category a frame below a system call names, or
// "".
func syscallKind(name string) string {
	short := strings.ToLower(ShortName(name))
	switch {
	case strings.Contains(short, "epoll") || strings.Contains(short, "netpoll"):
		return CatEpoll
	case strings.Contains(short, "socket") || strings.Contains(short, "connect") || strings.Contains(short, "accept") ||
		strings.Contains(short, "close") || strings.Contains(short, "sockopt") || strings.Contains(short, "dial"):
		return CatConn
	case strings.Contains(short, "write") || strings.Contains(short, "flush"):
		return CatWrite
	case strings.Contains(short, "read"):
		return CatRead
	}
	return ""
}

// isSyscall reports whether a running function is of the system call
// layer.
func isSyscall(name string) bool {
	switch pkgOf(name) {
	case "syscall", "internal/runtime/syscall/linux", "internal/runtime/syscall", "golang.org/x/sys/unix":
		return true
	}
	switch name {
	case "runtime.futex", "runtime.entersyscall", "runtime.reentersyscall", "runtime.exitsyscall",
		"runtime.entersyscallblock", "runtime.exitsyscallfast", "runtime.exitsyscall0", "runtime.epollwait":
		return true
	}
	return false
}

// isRuntime reports whether a function is the runtime's.
func isRuntime(name string) bool {
	p := pkgOf(name)
	return p == "runtime" || strings.HasPrefix(p, "internal/runtime/") || strings.HasPrefix(p, "runtime/internal/")
}

func isGC(name string) bool {
	s := strings.TrimPrefix(name, "runtime.")
	if s == name {
		return false
	}
	for _, p := range []string{"gc", "bgsweep", "bgscavenge", "markroot", "scanobject", "scanObject", "scanstack",
		"greyobject", "sweepone", "tryDeferToSpanScan", "scanSpan", "wbBuf", "bulkBarrier"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func isMalloc(name string) bool {
	s := strings.TrimPrefix(name, "runtime.")
	if s == name {
		return false
	}
	for _, p := range []string{"mallocgc", "newobject", "newarray", "makeslice", "growslice", "makemap", "rawstring",
		"rawbyteslice", "slicebytetostring", "concatstring", "mcache", "(*mcache)", "(*mcentral)", "(*mheap)", "nextFreeFast"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func isSched(name string) bool {
	s := strings.TrimPrefix(name, "runtime.")
	if s == name {
		return false
	}
	for _, p := range []string{"schedule", "findRunnable", "park_m", "gopark", "goready", "ready", "wakep", "startm", "stopm",
		"mcall", "gosched", "goschedImpl", "notesleep", "notewakeup", "notetsleep", "runq", "stealWork", "chansend", "chanrecv",
		"closechan", "selectgo", "lock", "unlock", "semacquire", "semrelease", "netpollblock", "casgstatus", "execute",
		"goexit", "newproc", "gfget", "gfput", "checkTimers", "futexsleep", "futexwakeup", "mPark", "resetspinning",
		"injectglist", "handoffp", "acquirep", "releasep", "exitsyscall", "entersyscall", "sysmon", "usleep", "osyield",
		"procyield", "retake", "(*timers)", "(*timer)", "notifyList", "sync_runtime"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// packageCategory returns the category of code in the package path p.
func packageCategory(p string) string {
	switch {
	case strings.HasPrefix(p, "google.golang.org/protobuf/"):
		return CatProto
	case strings.HasPrefix(p, "myrpc/benchmarks/"):
		return CatHarness
	case strings.HasPrefix(p, "myrpc/"):
		return CatMyrpc
	case strings.HasPrefix(p, "github.com/panjf2000/ants/"):
		return CatPool
	case p == "net" || p == "internal/poll" || p == "syscall" || p == "os" || p == "bufio" || p == "io":
		return CatNet
	case p == "sync" || p == "sync/atomic" || p == "internal/sync" || p == "context" || p == "time":
		return CatSync
	}
	return CatOther
}

// pkgOf returns the package path of a function's full name:
// myrpc/v3-async-mux/client.(*Conn).readLoop is myrpc/v3-async-mux/client.
func pkgOf(name string) string {
	head := name
	if i := strings.IndexByte(name, '('); i >= 0 {
		head = name[:i]
	}
	slash := strings.LastIndexByte(head, '/')
	if i := strings.IndexByte(head[slash+1:], '.'); i >= 0 {
		return head[:slash+1+i]
	}
	return head
}
