package cpuprof

import (
	"bytes"
	"encoding/xml"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// fakeProfile builds a CPU profile from stacks, each leaf first, with
// the CPU time of each in milliseconds.
func fakeProfile(stacks map[string]int64) *profile.Profile {
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10e6,
		DurationNanos: 2e9,
	}
	funcs := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	for st, ms := range stacks {
		var ls []*profile.Location
		for _, name := range strings.Split(st, " < ") {
			loc, ok := locs[name]
			if !ok {
				fn := &profile.Function{ID: uint64(len(funcs) + 1), Name: name}
				funcs[name] = fn
				p.Function = append(p.Function, fn)
				loc = &profile.Location{ID: uint64(len(locs) + 1), Line: []profile.Line{{Function: fn}}}
				locs[name] = loc
				p.Location = append(p.Location, loc)
			}
			ls = append(ls, loc)
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: ls, Value: []int64{ms / 10, ms * 1e6}})
	}
	return p
}

var testStacks = map[string]int64{
	"internal/runtime/syscall/linux.Syscall6 < syscall.RawSyscall6 < syscall.Syscall < syscall.write < main.serve":                       500,
	"internal/runtime/syscall/linux.Syscall6 < syscall.RawSyscall6 < syscall.Syscall < syscall.read < main.serve":                        200,
	"runtime.mallocgc < runtime.newobject < google.golang.org/protobuf/proto.Unmarshal < main.serve":                                     100,
	"google.golang.org/protobuf/internal/impl.(*MessageInfo).unmarshalPointer < google.golang.org/protobuf/proto.Unmarshal < main.serve": 100,
	"runtime.memmove < myrpc/v3-async-mux/codec.AppendFrame < main.serve":                                                                60,
	"runtime.futex < runtime.futexsleep < runtime.notesleep < runtime.stopm < runtime.findRunnable < runtime.schedule":                   40,
}

func TestSummarize(t *testing.T) {
	s, err := Summarize(fakeProfile(testStacks), 3)
	if err != nil {
		t.Fatal(err)
	}
	if s.Samples != 100 || s.CPUSeconds != 1 || s.WallSeconds != 2 {
		t.Errorf("samples %d, CPU %v s, wall %v s; want 100, 1, 2", s.Samples, s.CPUSeconds, s.WallSeconds)
	}
	want := []Func{
		{"internal/runtime/syscall/linux.Syscall6", 70, 70},
		{"google.golang.org/protobuf/internal/impl.(*MessageInfo).unmarshalPointer", 10, 10},
		{"runtime.mallocgc", 10, 10},
	}
	if len(s.Top) != len(want) {
		t.Fatalf("top %v, want %v", s.Top, want)
	}
	for i := range want {
		if s.Top[i] != want[i] {
			t.Errorf("top[%d] = %+v, want %+v", i, s.Top[i], want[i])
		}
	}
	cats := map[string]float64{}
	var sum float64
	for _, c := range s.Categories {
		cats[c.Category] = c.Pct
		sum += c.Pct
	}
	for c, pct := range map[string]float64{CatWrite: 50, CatRead: 20, CatMalloc: 10, CatProto: 10, CatMyrpc: 6, CatFutex: 4} {
		if cats[c] != pct {
			t.Errorf("%s: %v%%, want %v%% (all: %v)", c, cats[c], pct, s.Categories)
		}
	}
	if s.Categories[0].Category != CatWrite || sum < 99.9 || sum > 100.1 {
		t.Errorf("categories %v: want the most first, adding up to 100", s.Categories)
	}
	if _, err := Summarize(&profile.Profile{SampleType: []*profile.ValueType{{Type: "alloc_space"}}}, 3); err == nil {
		t.Error("a heap profile was summarized as a CPU profile")
	}
}

func TestSummarizeCum(t *testing.T) {
	// A recursive function counts once per stack in its cumulative time.
	s, err := Summarize(fakeProfile(map[string]int64{
		"main.leaf < main.rec < main.rec < main.main": 30,
		"main.rec < main.main":                        10,
	}), 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Top {
		if f.Name == "main.rec" && (f.Flat != 25 || f.Cum != 100) {
			t.Errorf("main.rec: flat %v%% cum %v%%, want 25 and 100", f.Flat, f.Cum)
		}
	}
}

func TestCategory(t *testing.T) {
	for _, tt := range []struct{ stack, want string }{
		{"internal/runtime/syscall/linux.Syscall6 < internal/runtime/syscall/linux.EpollWait < runtime.netpoll < runtime.findRunnable", CatEpoll},
		{"syscall.RawSyscall6 < syscall.Syscall < myrpc/v4-epoll-batch/poller.newConn.FD.func1 < myrpc/v4-epoll-batch/writev.(*Writer).Flush", CatWrite},
		{"runtime.exitsyscall < syscall.Syscall < golang.org/x/sys/unix.read < golang.org/x/sys/unix.Read", CatRead},
		{"internal/runtime/syscall/linux.Syscall6 < syscall.RawSyscall6 < syscall.Syscall < syscall.connect < net.(*netFD).connect", CatConn},
		{"internal/runtime/syscall/linux.Syscall6 < syscall.RawSyscall6 < syscall.Syscall < main.main", CatSyscall},
		{"runtime.futex < runtime.futexwakeup < runtime.notewakeup < runtime.startm < runtime.wakep", CatFutex},
		{"runtime.scanObject < runtime.gcDrain < runtime.gcBgMarkWorker.func2 < runtime.systemstack", CatGC},
		{"runtime.nextFreeFast < runtime.mallocgc < runtime.gcAssistAlloc < myrpc/v1-basic/client.Call", CatGC},
		{"runtime.nextFreeFast < runtime.mallocgc < runtime.newobject < myrpc/v1-basic/client.Call", CatMalloc},
		{"runtime.lock2 < runtime.chansend < runtime.chansend1 < myrpc/v3-async-mux/mux.(*Conn).readLoop", CatSched},
		{"runtime.memmove < google.golang.org/protobuf/internal/impl.consumeBytes", CatProto},
		{"runtime.mapaccess2_fast32 < myrpc/v3-async-mux/mux.(*Conn).deliver", CatMyrpc},
		{"myrpc/benchmarks/internal/hist.(*Histogram).Record < myrpc/benchmarks/internal/runner.closedLoop", CatHarness},
		{"github.com/panjf2000/ants/v2.(*goWorker).run.func1", CatPool},
		{"internal/poll.(*FD).Read < net.(*conn).Read", CatNet},
		{"time.runtimeNow < time.Now < myrpc/v4-epoll-batch/client.(*Client).Invoke", CatSync},
		{"runtime.nanotime < runtime.sysmon < runtime.mstart1", CatSched},
		{"runtime.adjustframe < runtime.copystack < runtime.newstack < runtime.morestack", CatRuntime},
		{"main.work < main.main", CatOther},
		{"", CatOther},
	} {
		var st []string
		if tt.stack != "" {
			st = strings.Split(tt.stack, " < ")
		}
		if got := Category(st); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.stack, got, tt.want)
		}
	}
}

func TestShortName(t *testing.T) {
	for in, want := range map[string]string{
		"myrpc/v3-async-mux/client.(*call).send":             "client.(*call).send",
		"internal/runtime/syscall/linux.Syscall6":            "linux.Syscall6",
		"runtime.mallocgc":                                   "runtime.mallocgc",
		"github.com/panjf2000/ants/v2.(*goWorker).run.func1": "v2.(*goWorker).run.func1",
		"main.(*T[go.shape.a/b]).m":                          "main.(*T[go.shape.a/b]).m",
	} {
		if got := ShortName(in); got != want {
			t.Errorf("ShortName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLoadAvg(t *testing.T) {
	l, err := parseLoadAvg("3.77 2.00 1.66 4/110 3489\n")
	if err != nil || len(l) != 3 || l[0] != 3.77 || l[2] != 1.66 {
		t.Fatalf("got %v, %v", l, err)
	}
	if _, err := parseLoadAvg("3.77 x"); err == nil {
		t.Fatal("a short line parsed")
	}
}

// TestWriteFlame: the flame graph is well-formed SVG with a frame per
// function on each path, each as wide as its share, the root spanning the
// width, and callees below their callers.
func TestWriteFlame(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFlame(&b, fakeProfile(testStacks), "test <flame>"); err != nil {
		t.Fatal(err)
	}
	type rect struct {
		X     float64 `xml:"x,attr"`
		Y     float64 `xml:"y,attr"`
		Width float64 `xml:"width,attr"`
	}
	type g struct {
		Title string `xml:"title"`
		Rect  rect   `xml:"rect"`
	}
	var svg struct {
		XMLName xml.Name `xml:"svg"`
		Text    []string `xml:"text"`
		G       []g      `xml:"g"`
	}
	if err := xml.Unmarshal(b.Bytes(), &svg); err != nil {
		t.Fatalf("not well-formed: %v", err)
	}
	if len(svg.Text) == 0 || svg.Text[0] != "test <flame>" {
		t.Errorf("title %q", svg.Text)
	}
	frames := map[string]rect{}
	for _, f := range svg.G {
		name, _, _ := strings.Cut(f.Title, " (")
		if _, dup := frames[name]; !dup {
			frames[name] = f.Rect
		}
	}
	root, ok := frames["all"]
	if !ok || root.Width < flameWidth-2*flameMargin-1 {
		t.Fatalf("root frame %+v", root)
	}
	// main.serve is 960 of the 1000 ms, and one row below the root.
	serve := frames["main.serve"]
	if got, want := serve.Width/root.Width, 0.96; got < want-0.001 || got > want+0.001 {
		t.Errorf("main.serve is %.3f of the width, want %.3f", got, want)
	}
	if serve.Y != root.Y+flameRow {
		t.Errorf("main.serve at y %v, want a row below the root at %v", serve.Y, root.Y)
	}
	write := frames["syscall.write"]
	if write.Y != serve.Y+flameRow || write.Width/root.Width < 0.499 || write.Width/root.Width > 0.501 {
		t.Errorf("syscall.write %+v", write)
	}
	if n := strings.Count(b.String(), "<g>"); n != 22 {
		t.Errorf("%d frames, want 22", n)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none.pprof")); err == nil {
		t.Error("read a profile that is not there")
	}
}

// TestCategoriesListed: every category Category can return has a key.
func TestCategoriesListed(t *testing.T) {
	keys := map[string]bool{}
	names := map[string]bool{}
	for _, c := range Categories {
		if keys[c.Key] || names[c.Name] {
			t.Errorf("%s (%s) listed twice", c.Key, c.Name)
		}
		keys[c.Key], names[c.Name] = true, true
	}
	for _, c := range []string{CatWrite, CatRead, CatEpoll, CatConn, CatSyscall, CatFutex, CatGC, CatMalloc, CatSched,
		CatRuntime, CatProto, CatMyrpc, CatPool, CatNet, CatSync, CatHarness, CatOther} {
		if !names[c] {
			t.Errorf("%s has no key", c)
		}
	}
	if !IsSyscallCategory(CatFutex) || !IsSyscallCategory(CatWrite) || IsSyscallCategory(CatGC) {
		t.Error("IsSyscallCategory")
	}
}
