package doccheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"myrpc/shared/proto/internal/gitdiff"
)

// requirePath lists the chapters that must have a reading path (see
// doc.go), by file name: every stage's. A chapter that has the marker is
// checked whether it is listed here or not.
var requirePath = []string{"v1-basic.md", "v2-pool-keepalive.md", "v3-async-mux.md", "v4-epoll-batch.md", "v5-cluster.md"}

// TestReadingPaths checks the reading path of every stage's chapter
// against the stage's code and the diff from the stage before.
func TestReadingPaths(t *testing.T) {
	root := "../../../.."
	chapters, err := filepath.Glob(filepath.Join(root, "docs", "v[0-9]-*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(chapters) < 4 {
		t.Fatalf("found the chapters %v; want one per stage", chapters)
	}
	checked := 0
	for _, chapter := range chapters {
		name := filepath.Base(chapter)
		stage := strings.TrimSuffix(name, ".md")
		n, _ := strconv.Atoi(stage[1:2])
		page, err := os.ReadFile(chapter)
		if err != nil {
			t.Fatal(err)
		}
		var want, prev string
		var code []gitdiff.File
		if n == 1 {
			want = "v1"
			if code, err = stageCode(filepath.Join(root, stage)); err != nil {
				t.Fatal(err)
			}
		} else {
			want = fmt.Sprintf("v%d-to-v%d", n-1, n)
			before, err := filepath.Glob(filepath.Join(root, "docs", fmt.Sprintf("v%d-*.md", n-1)))
			if err != nil || len(before) != 1 {
				t.Fatalf("%s: want one chapter of the stage before, found %v", name, before)
			}
			prev = filepath.Join(root, strings.TrimSuffix(filepath.Base(before[0]), ".md"))
			text, err := os.ReadFile(filepath.Join(root, "docs", "diffs", want+".diff"))
			if err != nil {
				t.Fatal(err)
			}
			if code, err = gitdiff.Parse(string(text)); err != nil {
				t.Fatalf("docs/diffs/%s.diff: %v", want, err)
			}
		}
		found, errs := checkReadingPath(string(page), want, filepath.Join(root, stage), prev, code)
		for _, e := range errs {
			t.Errorf("%s: %s", name, e)
		}
		switch {
		case found:
			checked++
		case slices.Contains(requirePath, name):
			t.Errorf("%s: no reading path (a list after <!-- reading-path: %s -->, see doccheck's doc.go)", name, want)
		default:
			t.Logf("%s: no reading path yet", name)
		}
	}
	t.Logf("checked %d reading paths in %d chapters", checked, len(chapters))
}

// TestReadingPathFixtures runs the check on the small chapters of
// testdata/readingpath, against the stage in testdata/readingpath/stage,
// the one before it in testdata/readingpath/prev and the diff between them
// in testdata/readingpath/code.diff.
func TestReadingPathFixtures(t *testing.T) {
	dir := filepath.Join("testdata", "readingpath")
	text, err := os.ReadFile(filepath.Join(dir, "code.diff"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := gitdiff.Parse(string(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		chapter string
		found   bool
		errs    []string // a part of each error, in order
	}{
		{"ok.md", true, nil},
		{"none.md", false, nil},
		{"missing-file.md", true, []string{"leaves out pool/pool.go, a file of the code diff"}},
		{"unknown-file.md", true, []string{"names client/missing.go, which is not a file of the stage"}},
		{"unknown-func.md", true, []string{
			"client/client.go: declares no Dial",
			"client/client.go: has no method or field Client.Close",
			"client/client.go: has no method or field Options.Retries",
			"pool/pool.go: declares no Get",
		}},
		{"not-ident.md", true, []string{"line 5: `New()` is not an identifier"}},
		{"no-file.md", true, []string{"does not begin with the file it is about"}},
		{"wrong-marker.md", true, []string{"the marker says v2-to-v3; this chapter's is v1-to-v2"}},
	} {
		t.Run(tc.chapter, func(t *testing.T) {
			page, err := os.ReadFile(filepath.Join(dir, tc.chapter))
			if err != nil {
				t.Fatal(err)
			}
			found, errs := checkReadingPath(string(page), "v1-to-v2", filepath.Join(dir, "stage"), filepath.Join(dir, "prev"), code)
			if found != tc.found {
				t.Errorf("found a reading path: %v, want %v", found, tc.found)
			}
			if len(errs) != len(tc.errs) {
				t.Fatalf("errors:\n%s\nwant %d, with:\n%s", strings.Join(errs, "\n"), len(tc.errs), strings.Join(tc.errs, "\n"))
			}
			for i, e := range errs {
				if !strings.Contains(e, tc.errs[i]) {
					t.Errorf("error %d is %q; want it to say %q", i, e, tc.errs[i])
				}
			}
		})
	}
}

// TestStageCode checks the files that stand for V1's diff: the fixture
// stage has a test, a generated file and testdata besides its code.
func TestStageCode(t *testing.T) {
	files, err := stageCode(filepath.Join("testdata", "readingpath", "stage"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
	}
	want := []string{"client/client.go", "moved/x.go", "pool/pool.go", "rpc.yaml"}
	if !slices.Equal(got, want) {
		t.Errorf("stageCode = %v, want %v", got, want)
	}
}

var (
	pathMarker = regexp.MustCompile(`(?m)^<!-- reading-path: ([^ ]+) -->$`)
	listItem   = regexp.MustCompile(`^(?:[0-9]+[.)]|[-*+])[ \t]+(.*)$`)
	fileSpan   = regexp.MustCompile("^\\*\\*`([^`]+)`\\*\\*")
	identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)
)

// pathItem is one item of a reading path: the file it is about and the
// identifiers its head names.
type pathItem struct {
	line   int
	file   string
	idents []string
}

// checkReadingPath checks the reading path of a chapter, if it has one:
// want is the marker's value for this chapter, stage the stage's folder,
// prev the previous stage's ("" for V1), code the files of the code diff.
// It reports whether the chapter has a marker, and what is wrong.
func checkReadingPath(page, want, stage, prev string, code []gitdiff.File) (found bool, errs []string) {
	markers := pathMarker.FindAllStringSubmatchIndex(page, -1)
	if len(markers) == 0 {
		return false, nil
	}
	if len(markers) > 1 {
		errs = append(errs, fmt.Sprintf("%d reading-path markers; want one", len(markers)))
	}
	m := markers[0]
	if got := page[m[2]:m[3]]; got != want {
		errs = append(errs, fmt.Sprintf("the marker says %s; this chapter's is %s", got, want))
	}
	firstLine := strings.Count(page[:m[1]], "\n") + 1
	items, bad := parsePath(page[m[1]:], firstLine)
	errs = append(errs, bad...)
	if len(items) == 0 {
		return true, append(errs, "the reading path has no items")
	}

	deleted := map[string]bool{}
	for _, f := range code {
		if f.Status == gitdiff.Deleted {
			deleted[f.Path] = true
		}
	}
	listed := map[string]bool{}
	for _, it := range items {
		listed[it.file] = true
		clean := path.Clean(it.file)
		if clean != it.file || path.IsAbs(clean) || strings.HasPrefix(clean, "../") {
			errs = append(errs, fmt.Sprintf("line %d: %s is not a path inside the stage's folder", it.line, it.file))
			continue
		}
		file := filepath.Join(stage, filepath.FromSlash(it.file))
		if _, err := os.Stat(file); err != nil {
			if !deleted[it.file] || prev == "" {
				errs = append(errs, fmt.Sprintf("line %d: names %s, which is not a file of the stage", it.line, it.file))
				continue
			}
			file = filepath.Join(prev, filepath.FromSlash(it.file))
		}
		if !strings.HasSuffix(it.file, ".go") {
			continue
		}
		decls, err := declarations(file)
		if err != nil {
			errs = append(errs, fmt.Sprintf("line %d: %v", it.line, err))
			continue
		}
		for _, id := range it.idents {
			if msg := decls.lookup(id); msg != "" {
				errs = append(errs, fmt.Sprintf("line %d: %s: %s", it.line, it.file, msg))
			}
		}
	}
	for _, f := range code {
		if f.Status != gitdiff.Deleted && !listed[f.Path] {
			errs = append(errs, fmt.Sprintf("the reading path leaves out %s, a file of the code diff", f.Path))
		}
	}
	return true, errs
}

// parsePath reads the items of the list that follows a marker, up to the
// next heading; line is the number of the section's first line.
func parsePath(section string, line int) (items []pathItem, errs []string) {
	type raw struct {
		line int
		text []string
	}
	var all []raw
	inItem, blank, fence := false, false, false
	for i, l := range strings.Split(section, "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fence = !fence
			inItem = false
			continue
		}
		if fence {
			continue
		}
		if strings.HasPrefix(l, "#") {
			break // the next heading ends the section
		}
		if m := listItem.FindStringSubmatch(l); m != nil {
			all = append(all, raw{line + i, []string{m[1]}})
			inItem, blank = true, false
			continue
		}
		if strings.TrimSpace(l) == "" {
			blank = true
			continue
		}
		indented := strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
		if inItem && (!blank || indented) {
			all[len(all)-1].text = append(all[len(all)-1].text, strings.TrimSpace(l))
			blank = false
			continue
		}
		inItem = false
	}
	for _, r := range all {
		it, ok, bad := parseItem(strings.Join(r.text, " "))
		for _, e := range bad {
			errs = append(errs, fmt.Sprintf("line %d: %s", r.line, e))
		}
		if ok {
			it.line = r.line
			items = append(items, it)
		}
	}
	return items, errs
}

// parseItem reads one item: the bold file, then the identifiers of its
// head. It reports whether the item names a file, and what is wrong with
// it; a code span that is not an identifier is left out of the item.
func parseItem(text string) (it pathItem, ok bool, errs []string) {
	m := fileSpan.FindStringSubmatch(text)
	if m == nil {
		return it, false, []string{fmt.Sprintf("the item %q does not begin with the file it is about, as **`path`**", short(text))}
	}
	it.file = m[1]
	rest := text[len(m[0]):]
	depth := 0
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '(':
			depth++
		case ')':
			depth = max(depth-1, 0)
		case ':':
			if depth == 0 {
				return it, true, errs
			}
		case '`':
			end := strings.IndexByte(rest[i+1:], '`')
			if end < 0 {
				return it, true, append(errs, fmt.Sprintf("the item %q has an unclosed code span", short(text)))
			}
			span := rest[i+1 : i+1+end]
			i += 1 + end
			switch {
			case depth > 0:
			case identifier.MatchString(span):
				it.idents = append(it.idents, span)
			default:
				errs = append(errs, fmt.Sprintf("`%s` is not an identifier (Name, Type.Method or Type.Field); put notes in parentheses and prose after a colon", span))
			}
		}
	}
	return it, true, errs
}

// short cuts a long item for a message.
func short(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// decls is what one Go file declares.
type decls struct {
	top     map[string]bool            // functions, types, variables, constants
	members map[string]map[string]bool // methods with the type as receiver, and fields and methods of the file's struct and interface types
}

// declarations parses a Go file and returns what it declares.
func declarations(file string) (decls, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		return decls{}, err
	}
	d := decls{top: map[string]bool{}, members: map[string]map[string]bool{}}
	member := func(typ, name string) {
		if d.members[typ] == nil {
			d.members[typ] = map[string]bool{}
		}
		d.members[typ][name] = true
	}
	for _, decl := range f.Decls {
		switch decl := decl.(type) {
		case *ast.FuncDecl:
			if decl.Recv == nil || len(decl.Recv.List) == 0 {
				d.top[decl.Name.Name] = true
				continue
			}
			if typ := typeName(decl.Recv.List[0].Type); typ != "" {
				member(typ, decl.Name.Name)
			}
		case *ast.GenDecl:
			for _, spec := range decl.Specs {
				switch spec := spec.(type) {
				case *ast.ValueSpec:
					for _, n := range spec.Names {
						d.top[n.Name] = true
					}
				case *ast.TypeSpec:
					d.top[spec.Name.Name] = true
					var fields *ast.FieldList
					switch typ := spec.Type.(type) {
					case *ast.StructType:
						fields = typ.Fields
					case *ast.InterfaceType:
						fields = typ.Methods
					}
					if fields == nil {
						continue
					}
					for _, fld := range fields.List {
						for _, n := range fld.Names {
							member(spec.Name.Name, n.Name)
						}
						if len(fld.Names) == 0 { // embedded
							if n := typeName(fld.Type); n != "" {
								member(spec.Name.Name, n)
							}
						}
					}
				}
			}
		}
	}
	return d, nil
}

// typeName returns the name of a receiver's or embedded field's type:
// T for T, *T, T[P], pkg.T.
func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.StarExpr:
		return typeName(e.X)
	case *ast.IndexExpr:
		return typeName(e.X)
	case *ast.IndexListExpr:
		return typeName(e.X)
	case *ast.SelectorExpr:
		return e.Sel.Name
	case *ast.ParenExpr:
		return typeName(e.X)
	}
	return ""
}

// lookup returns "" if the file declares id, and else what is wrong.
func (d decls) lookup(id string) string {
	typ, name, ok := strings.Cut(id, ".")
	if !ok {
		if d.top[id] {
			return ""
		}
		return fmt.Sprintf("declares no %s (a method or field is Type.Name)", id)
	}
	if d.members[typ][name] {
		return ""
	}
	return fmt.Sprintf("has no method or field %s (methods declared in the file, fields of its types)", id)
}

// stageCode returns the files that stand for the first stage's diff: its
// Go files that are neither tests nor generated, outside testdata, and
// its rpc.yaml, sorted by path.
func stageCode(dir string) ([]gitdiff.File, error) {
	var files []gitdiff.File
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if e.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case rel == "rpc.yaml":
		case !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || strings.HasSuffix(rel, ".pb.go"):
			return nil
		default:
			f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				return err
			}
			if ast.IsGenerated(f) {
				return nil
			}
		}
		files = append(files, gitdiff.File{Path: rel, OldPath: rel, Status: gitdiff.Added})
		return nil
	})
	slices.SortFunc(files, func(a, b gitdiff.File) int { return strings.Compare(a.Path, b.Path) })
	return files, err
}
