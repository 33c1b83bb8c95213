// Command cluster runs the V5 demo (make run-v5): an etcd member in this
// process, three servers (cmd/server, each its own process) that register
// in it, and a client that finds them through it (etcd:///myrpc.demo) and
// spreads its calls over them. Mid-run one server is stopped with SIGTERM,
// and no call fails; one is killed with SIGKILL, and the calls it had in
// flight are lost, while its key stays in etcd until its lease ends; then
// a fourth server joins and gets its share. The servers are processes of
// their own, not goroutines, so that the signals are the real ones and a
// killed server is gone without a word, as it would be in production.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/etcdlocal"
	"myrpc/v5-cluster/registry"
)

// service is the name the demo's servers register under.
const service = "myrpc.demo"

func main() {
	serverBin := flag.String("server", "", "the V5 cmd/server binary that runs each server (required)")
	ttl := flag.Duration("ttl", 3*time.Second, "the lease of a server's key in etcd")
	phase := flag.Duration("phase", 3*time.Second, "how long each step of the demo runs")
	callers := flag.Int("callers", 16, "the goroutines calling, each one call at a time")
	work := flag.Duration("work", 20*time.Millisecond, "how long a server works on each call")
	flag.Parse()
	if *serverBin == "" {
		fmt.Fprintln(os.Stderr, "cluster: -server is required")
		os.Exit(2)
	}
	d := &demo{serverBin: *serverBin, ttl: *ttl, phase: *phase, callers: *callers, work: *work}
	if err := d.run(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// demo is one run of the demo.
type demo struct {
	serverBin string
	ttl       time.Duration
	phase     time.Duration
	callers   int
	work      time.Duration

	configPath string
	servers    []*serverProc
	tally      *tally
	// names maps a server's process id, as its trailer served-by gives
	// it, to its name.
	names sync.Map
}

func (d *demo) run() error {
	start := time.Now()
	// etcd's own log is dropped but for errors.
	etcd, err := etcdlocal.Start(context.Background(), etcdlocal.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		return err
	}
	defer etcd.Close()
	// The servers stop before etcd does, so that they can take their keys
	// out.
	defer d.stopAll()
	fmt.Printf("etcd: one member in this process, serving at %s (started in %v)\n",
		strings.Join(etcd.Endpoints(), ","), time.Since(start).Round(time.Millisecond))

	dir, err := os.MkdirTemp("", "myrpc-v5-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d.configPath = filepath.Join(dir, "rpc.yaml")
	if err := os.WriteFile(d.configPath, []byte(d.config(etcd.Endpoints())), 0o644); err != nil {
		return err
	}
	fmt.Printf("servers: %s -config rpc.yaml, whose registry section says:\n", filepath.Base(d.serverBin))
	fmt.Printf("  endpoints %v, service %s, ttl %v, deregister_wait 1s\n", etcd.Endpoints(), service, d.ttl)

	for i := 1; i <= 3; i++ {
		if _, err := d.startServer(i); err != nil {
			return err
		}
	}

	cli, err := registry.NewClient(etcd.Endpoints())
	if err != nil {
		return err
	}
	defer cli.Close()
	watch := newWatch()
	res, err := registry.NewResolver(cli).Resolve(service, watch.update)
	if err != nil {
		return err
	}
	defer res.Close()

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := client.New("etcd:///"+service, client.WithResolver(registry.NewResolver(cli)), client.WithLogger(quiet))
	defer c.Close()
	fmt.Printf("client: target etcd:///%s, p2c; %d callers, one Echo call at a time each, %v of work on the server\n\n",
		service, d.callers, d.work)

	d.tally = newTally()
	stop := d.call(c)
	defer stop()

	// 1. Three servers share the calls.
	d.tally.next()
	fmt.Printf("1. three servers, for %v\n", d.phase)
	time.Sleep(d.phase)
	p1 := d.tally.next()
	d.report(p1)

	// 2. SIGTERM: the server takes its key out, serves for the deregister
	// wait while the clients see it gone, drains, and exits 0.
	s1 := d.servers[0]
	fmt.Printf("\n2. SIGTERM to s1 (pid %d): it deregisters, serves 1 s more, drains and exits\n", s1.cmd.Process.Pid)
	termAt := time.Now()
	if err := s1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := s1.wait(); err != nil {
		return fmt.Errorf("s1 after SIGTERM: %w", err)
	}
	fmt.Printf("   s1 exited with status 0 after %v\n", time.Since(termAt).Round(time.Millisecond))
	time.Sleep(d.phase - min(d.phase, time.Since(termAt)))
	p2 := d.tally.next()
	d.report(p2)
	if p2.failed() > 0 {
		return fmt.Errorf("%d calls failed while s1 was stopped with SIGTERM; want none", p2.failed())
	}
	fmt.Println("   no call failed: s1 was gone from etcd, and so from the client's servers, before it stopped accepting")

	// 3. SIGKILL: the calls in flight on the server are lost; its key
	// stays until its lease ends.
	s2 := d.servers[1]
	fmt.Printf("\n3. SIGKILL to s2 (pid %d, %s)\n", s2.cmd.Process.Pid, s2.addr)
	killAt := time.Now()
	gone := watch.gone(s2.addr)
	if err := s2.cmd.Process.Kill(); err != nil {
		return err
	}
	_ = s2.wait()
	select {
	case <-gone:
		fmt.Printf("   s2's key left etcd %v after the kill: its lease (ttl %v) ran out, as no one renewed it\n",
			time.Since(killAt).Round(time.Millisecond), d.ttl)
	case <-time.After(3*d.ttl + 10*time.Second):
		return fmt.Errorf("s2's key was still in etcd %v after the kill", time.Since(killAt).Round(time.Millisecond))
	}
	time.Sleep(time.Second)
	p3 := d.tally.next()
	d.report(p3)
	fmt.Printf("   %d calls failed: those s2 was working on when it died. They had been sent, and s2\n", p3.failed())
	fmt.Println("   may have run them, so the client does not send them again unless its retry policy")
	fmt.Println("   says they may repeat. Calls that found s2's port closed had not been sent: they went")
	fmt.Println("   to another server, and s2 was ejected until its key went.")
	for msg, n := range p3.errs {
		fmt.Printf("   %5d  %s\n", n, msg)
	}

	// 4. A fourth server joins and gets its share.
	fmt.Printf("\n4. s4 starts and registers, for %v\n", d.phase)
	if _, err := d.startServer(4); err != nil {
		return err
	}
	d.tally.next()
	time.Sleep(d.phase)
	p4 := d.tally.next()
	d.report(p4)
	if p4.counts["s4"] == 0 {
		return errors.New("s4 got no calls")
	}
	if p4.failed() > 0 {
		return fmt.Errorf("%d calls failed with s3 and s4 serving; want none", p4.failed())
	}

	stop()
	total := d.tally.total()
	fmt.Printf("\nIn all: %d calls, %d failed (all at s2's kill); per server:", total.calls(), total.failed())
	for _, name := range total.names() {
		fmt.Printf(" %s %d", name, total.counts[name])
	}
	fmt.Println()
	if total.failed() != p3.failed() {
		return errors.New("calls failed outside the kill")
	}
	fmt.Println("Last, SIGTERM to s3 and s4.")
	d.stopAll()
	for _, s := range d.servers[2:] {
		if s.err != nil {
			return fmt.Errorf("%s after SIGTERM: %w", s.name, s.err)
		}
	}
	return nil
}

// config returns the servers' rpc.yaml.
func (d *demo) config(endpoints []string) string {
	return "server:\n" +
		"  services:\n" +
		"    - {name: myrpc.helloworld.Greeter, address: 127.0.0.1:0}\n" +
		"    - {name: myrpc.echo.Echo, address: 127.0.0.1:0}\n" +
		"  shutdown_timeout: 5s\n" +
		"registry:\n" +
		"  endpoints: [" + strings.Join(endpoints, ", ") + "]\n" +
		"  service: " + service + "\n" +
		"  ttl: " + d.ttl.String() + "\n" +
		"  deregister_wait: 1s\n"
}

// call starts the callers; the function it returns stops them and waits
// for them.
func (d *demo) call(c *client.Client) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range d.callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ec := echo.NewEchoClient(c)
			req := &echo.EchoRequest{Payload: []byte("demo"), DelayMs: uint32(d.work.Milliseconds())}
			for ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
				var md rpc.Metadata
				_, err := ec.Echo(cctx, req, rpc.Trailer(&md))
				ccancel()
				d.tally.add(d.serverName(md["served-by"]), err)
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
}

// serverName returns the name of the server whose process id is pid.
func (d *demo) serverName(pid string) string {
	if name, ok := d.names.Load(pid); ok {
		return name.(string)
	}
	return "pid " + pid
}

// report prints a step's calls per server.
func (d *demo) report(p *counts) {
	fmt.Printf("   %d calls:", p.calls())
	for _, name := range p.names() {
		fmt.Printf(" %s %d", name, p.counts[name])
	}
	fmt.Printf("; failed %d\n", p.failed())
}

// serverProc is a server process.
type serverProc struct {
	name string
	cmd  *exec.Cmd
	addr string
	// exited is closed when the process has exited; err is then its
	// Wait's error.
	exited chan struct{}
	err    error
}

// registered matches a server's log line that says it registered.
var registered = regexp.MustCompile(`msg="rpc: registered" service=\S+ addr=(\S+)`)

// startServer starts server i and waits until it has registered.
func (d *demo) startServer(i int) (*serverProc, error) {
	s := &serverProc{name: fmt.Sprintf("s%d", i), exited: make(chan struct{})}
	s.cmd = exec.Command(d.serverBin, "-config", d.configPath)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	d.servers = append(d.servers, s)
	d.names.Store(strconv.Itoa(s.cmd.Process.Pid), s.name)
	addr := make(chan string, 1)
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := registered.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
			if strings.Contains(line, "rpc: listening") {
				continue
			}
			// The time only adds noise here.
			fmt.Printf("   %s | %s\n", s.name, strings.TrimPrefix(line[strings.Index(line, " ")+1:], "level="))
		}
	}()
	go func() {
		<-lines
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.addr = <-addr:
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("%s exited before it registered: %v", s.name, s.err)
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s did not register within 30 s", s.name)
	}
}

// wait waits for the process to exit and returns its error.
func (s *serverProc) wait() error {
	<-s.exited
	return s.err
}

// stopAll stops the servers still running with SIGTERM, and waits for
// them; one that takes more than 10 s is killed.
func (d *demo) stopAll() {
	for _, s := range d.servers {
		select {
		case <-s.exited:
			continue
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, s := range d.servers {
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
}

// watch follows the demo service's addresses in etcd.
type watch struct {
	mu     sync.Mutex // protects addrs and waits
	addrs  []string
	waits  map[string]chan struct{}
	closed map[string]bool
}

func newWatch() *watch {
	return &watch{waits: make(map[string]chan struct{}), closed: make(map[string]bool)}
}

func (w *watch) update(addrs []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.addrs = addrs
	for addr, ch := range w.waits {
		if !slices.Contains(addrs, addr) {
			close(ch)
			delete(w.waits, addr)
		}
	}
}

// gone returns a channel closed once addr is not among the addresses.
func (w *watch) gone(addr string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if !slices.Contains(w.addrs, addr) {
		close(ch)
		return ch
	}
	w.waits[addr] = ch
	return ch
}

// counts holds the outcomes of one step's calls.
type counts struct {
	counts map[string]int // answered calls per server
	errs   map[string]int // failed calls per error
}

func newCounts() *counts { return &counts{counts: make(map[string]int), errs: make(map[string]int)} }

func (p *counts) failed() int {
	n := 0
	for _, v := range p.errs {
		n += v
	}
	return n
}

func (p *counts) calls() int {
	n := p.failed()
	for _, v := range p.counts {
		n += v
	}
	return n
}

func (p *counts) names() []string {
	var names []string
	for name := range p.counts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// tally counts the calls, step by step.
type tally struct {
	mu    sync.Mutex // protects cur and done
	cur   *counts
	steps []*counts
}

func newTally() *tally { return &tally{cur: newCounts()} }

func (t *tally) add(server string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		msg := err.Error()
		if se, ok := status.FromError(err); ok {
			msg = se.Message()
		}
		t.cur.errs[fmt.Sprintf("code %d (%s): %s", status.Code(err), status.Code(err), msg)]++
		return
	}
	t.cur.counts[server]++
}

// next ends the current step and returns it.
func (t *tally) next() *counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.cur
	t.steps = append(t.steps, p)
	t.cur = newCounts()
	return p
}

// total returns the sum of every step.
func (t *tally) total() *counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	sum := newCounts()
	for _, p := range append(slices.Clone(t.steps), t.cur) {
		for k, v := range p.counts {
			sum.counts[k] += v
		}
		for k, v := range p.errs {
			sum.errs[k] += v
		}
	}
	return sum
}
