package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/pluginpb"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the generator's output")

// protoc321 is the compiler version the committed stubs were made with, so
// that the generated header matches them.
var protoc321 = &pluginpb.Version{Major: proto.Int32(3), Minor: proto.Int32(21), Patch: proto.Int32(12)}

// runPlugin runs the generator the way main does, but in-process: no protoc
// binary, no stdin or stdout. It returns the plugin's response and the error
// generateFile returned, if any.
func runPlugin(t *testing.T, req *pluginpb.CodeGeneratorRequest) (*pluginpb.CodeGeneratorResponse, error) {
	t.Helper()
	gen, err := protogen.Options{}.New(req)
	if err != nil {
		t.Fatalf("protogen.Options.New: %v", err)
	}
	gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
	var genErr error
	for _, f := range gen.Files {
		if !f.Generate {
			continue
		}
		if genErr = generateFile(gen, f); genErr != nil {
			gen.Error(genErr)
			break
		}
	}
	return gen.Response(), genErr
}

// newRequest builds the request protoc would send for files, which must be
// in dependency order (every file after the files it imports). The files in
// generate are the ones named on the command line.
func newRequest(files []*descriptorpb.FileDescriptorProto, generate ...string) *pluginpb.CodeGeneratorRequest {
	return &pluginpb.CodeGeneratorRequest{
		FileToGenerate:  generate,
		Parameter:       proto.String("paths=source_relative"),
		ProtoFile:       files,
		CompilerVersion: protoc321,
	}
}

// compiledFile returns the descriptor of a compiled-in .proto file, with the
// leading comments of its services and methods read from the .proto source
// at protoPath. Compiled-in descriptors carry no SourceCodeInfo (protoc-gen-go
// strips it), but the comments are part of the stubs, so the test puts back
// the ones protoc would have sent.
func compiledFile(t *testing.T, fd protoreflect.FileDescriptor, protoPath string) *descriptorpb.FileDescriptorProto {
	t.Helper()
	fdp := protodesc.ToFileDescriptorProto(fd)
	src, err := os.ReadFile(protoPath)
	if err != nil {
		t.Fatal(err)
	}
	fdp.SourceCodeInfo = serviceComments(t, fdp, src)
	return fdp
}

// serviceComments finds the comment block directly above each "service" and
// "rpc" line of a .proto source and returns it as the SourceCodeInfo protoc
// would report: the text after each "//", one line each, ending in "\n". It
// only understands the simple layout of this module's .proto files, and
// fails the test if the services and methods it finds do not match fdp.
func serviceComments(t *testing.T, fdp *descriptorpb.FileDescriptorProto, src []byte) *descriptorpb.SourceCodeInfo {
	t.Helper()
	info := &descriptorpb.SourceCodeInfo{}
	var block []string
	svc, mi := -1, 0
	sc := bufio.NewScanner(bytes.NewReader(src))
	for line := 0; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if c, ok := strings.CutPrefix(text, "//"); ok {
			block = append(block, c)
			continue
		}
		var path []int32
		var name string
		switch fields := strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '(' || r == '{' }); {
		case len(fields) >= 2 && fields[0] == "service":
			svc, mi = svc+1, 0
			if svc >= len(fdp.GetService()) {
				t.Fatalf("%s: service %s is not in the descriptor", fdp.GetName(), fields[1])
			}
			path, name = []int32{fileServiceField, int32(svc)}, fdp.GetService()[svc].GetName()
			if name != fields[1] {
				t.Fatalf("%s: service %d is %s in the source, %s in the descriptor", fdp.GetName(), svc, fields[1], name)
			}
		case len(fields) >= 2 && fields[0] == "rpc" && svc >= 0:
			methods := fdp.GetService()[svc].GetMethod()
			if mi >= len(methods) {
				t.Fatalf("%s: method %s is not in the descriptor", fdp.GetName(), fields[1])
			}
			path, name = []int32{fileServiceField, int32(svc), serviceMethodField, int32(mi)}, methods[mi].GetName()
			if name != fields[1] {
				t.Fatalf("%s: method %d is %s in the source, %s in the descriptor", fdp.GetName(), mi, fields[1], name)
			}
			mi++
		}
		if path != nil && len(block) > 0 {
			info.Location = append(info.Location, &descriptorpb.SourceCodeInfo_Location{
				Path:            path,
				Span:            []int32{int32(line), 0, int32(len(sc.Text()))},
				LeadingComments: proto.String(strings.Join(block, "\n") + "\n"),
			})
		}
		block = nil
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if svc+1 != len(fdp.GetService()) {
		t.Fatalf("%s: found %d services in the source, the descriptor has %d", fdp.GetName(), svc+1, len(fdp.GetService()))
	}
	return info
}

// Field numbers in descriptor.proto, the steps of a SourceCodeInfo path.
const (
	fileMessageField   = 4 // FileDescriptorProto.message_type
	fileServiceField   = 6 // FileDescriptorProto.service
	serviceMethodField = 2 // ServiceDescriptorProto.method
)

// comment returns a SourceCodeInfo location with a leading comment for the
// element at path.
func comment(text string, path ...int32) *descriptorpb.SourceCodeInfo_Location {
	return &descriptorpb.SourceCodeInfo_Location{
		Path:            path,
		Span:            []int32{0, 0, 1},
		LeadingComments: proto.String(text),
	}
}

func message(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
	return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
}

func field(name string, number int32, typ descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto {
	return &descriptorpb.FieldDescriptorProto{
		Name:     proto.String(name),
		JsonName: proto.String(name),
		Number:   proto.Int32(number),
		Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		Type:     typ.Enum(),
	}
}

func method(name, in, out string) *descriptorpb.MethodDescriptorProto {
	return &descriptorpb.MethodDescriptorProto{Name: proto.String(name), InputType: proto.String(in), OutputType: proto.String(out)}
}

// shopFile is a richer .proto than the module's own, built by hand:
//
//	syntax = "proto3";
//	package myrpc.testdata.shop;
//	import "google/protobuf/empty.proto";
//	option go_package = "example.com/shop;shop";
//
//	// Catalog lists what the shop sells.
//	//
//	// Prices are in cents.
//	service Catalog {
//	  // GetItem returns one item by its id.
//	  rpc GetItem(GetItemRequest) returns (Item);
//	  rpc ListItems(google.protobuf.Empty) returns (ItemList);
//	  // DeleteItem removes an item.
//	  rpc DeleteItem(DeleteItemRequest) returns (google.protobuf.Empty);
//	}
//
//	service Checkout {
//	  rpc PlaceOrder(Order) returns (Receipt);
//	}
func shopFile() *descriptorpb.FileDescriptorProto {
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING
	i64 := descriptorpb.FieldDescriptorProto_TYPE_INT64
	itemList := message("ItemList", field("items", 1, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE))
	itemList.Field[0].TypeName = proto.String(".myrpc.testdata.shop.Item")
	itemList.Field[0].Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	return &descriptorpb.FileDescriptorProto{
		Name:       proto.String("shop/shop.proto"),
		Package:    proto.String("myrpc.testdata.shop"),
		Dependency: []string{"google/protobuf/empty.proto"},
		Syntax:     proto.String("proto3"),
		Options:    &descriptorpb.FileOptions{GoPackage: proto.String("example.com/shop;shop")},
		MessageType: []*descriptorpb.DescriptorProto{
			message("Item", field("id", 1, str), field("name", 2, str), field("price_cents", 3, i64)),
			itemList,
			message("GetItemRequest", field("id", 1, str)),
			message("DeleteItemRequest", field("id", 1, str)),
			message("Order", field("item_id", 1, str), field("quantity", 2, i64)),
			message("Receipt", field("order_id", 1, str)),
		},
		Service: []*descriptorpb.ServiceDescriptorProto{
			{
				Name: proto.String("Catalog"),
				Method: []*descriptorpb.MethodDescriptorProto{
					method("GetItem", ".myrpc.testdata.shop.GetItemRequest", ".myrpc.testdata.shop.Item"),
					method("ListItems", ".google.protobuf.Empty", ".myrpc.testdata.shop.ItemList"),
					method("DeleteItem", ".myrpc.testdata.shop.DeleteItemRequest", ".google.protobuf.Empty"),
				},
			},
			{
				Name: proto.String("Checkout"),
				Method: []*descriptorpb.MethodDescriptorProto{
					method("PlaceOrder", ".myrpc.testdata.shop.Order", ".myrpc.testdata.shop.Receipt"),
				},
			},
		},
		SourceCodeInfo: &descriptorpb.SourceCodeInfo{Location: []*descriptorpb.SourceCodeInfo_Location{
			comment(" Catalog lists what the shop sells.\n\n Prices are in cents.\n", fileServiceField, 0),
			comment(" GetItem returns one item by its id.\n", fileServiceField, 0, serviceMethodField, 0),
			comment(" DeleteItem removes an item.\n", fileServiceField, 0, serviceMethodField, 2),
			// A comment on a message must not leak into the stubs.
			comment(" Item is one thing the shop sells.\n", fileMessageField, 0),
		}},
	}
}

// idleFile has a service with no methods yet, which protoc accepts:
//
//	syntax = "proto3";
//	package myrpc.testdata.idle;
//	option go_package = "example.com/idle";
//	service Idle {}
func idleFile() *descriptorpb.FileDescriptorProto {
	return &descriptorpb.FileDescriptorProto{
		Name:    proto.String("idle/idle.proto"),
		Package: proto.String("myrpc.testdata.idle"),
		Syntax:  proto.String("proto3"),
		Options: &descriptorpb.FileOptions{GoPackage: proto.String("example.com/idle")},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("Idle")}},
	}
}

func emptyFile() *descriptorpb.FileDescriptorProto {
	return protodesc.ToFileDescriptorProto(emptypb.File_google_protobuf_empty_proto)
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		req  func(t *testing.T) *pluginpb.CodeGeneratorRequest
		// wantName is the output file's name in the response.
		wantName string
		// golden is the file the output must equal, relative to this
		// package's directory.
		golden string
		// committed marks a golden file that `make proto` writes; -update
		// leaves those alone.
		committed bool
	}{
		{
			name: "helloworld",
			req: func(t *testing.T) *pluginpb.CodeGeneratorRequest {
				fdp := compiledFile(t, helloworld.File_helloworld_helloworld_proto, "../../helloworld/helloworld.proto")
				return newRequest([]*descriptorpb.FileDescriptorProto{fdp}, "helloworld/helloworld.proto")
			},
			wantName:  "helloworld/helloworld_myrpc.pb.go",
			golden:    "../../helloworld/helloworld_myrpc.pb.go",
			committed: true,
		},
		{
			name: "echo",
			req: func(t *testing.T) *pluginpb.CodeGeneratorRequest {
				fdp := compiledFile(t, echo.File_echo_echo_proto, "../../echo/echo.proto")
				return newRequest([]*descriptorpb.FileDescriptorProto{fdp}, "echo/echo.proto")
			},
			wantName:  "echo/echo_myrpc.pb.go",
			golden:    "../../echo/echo_myrpc.pb.go",
			committed: true,
		},
		{
			name: "shop",
			req: func(*testing.T) *pluginpb.CodeGeneratorRequest {
				return newRequest([]*descriptorpb.FileDescriptorProto{emptyFile(), shopFile()}, "shop/shop.proto")
			},
			wantName: "shop/shop_myrpc.pb.go",
			golden:   "testdata/shop_myrpc.pb.go.golden",
		},
		{
			name: "service without methods",
			req: func(*testing.T) *pluginpb.CodeGeneratorRequest {
				return newRequest([]*descriptorpb.FileDescriptorProto{idleFile()}, "idle/idle.proto")
			},
			wantName: "idle/idle_myrpc.pb.go",
			golden:   "testdata/idle_myrpc.pb.go.golden",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := runPlugin(t, tt.req(t))
			if err != nil {
				t.Fatalf("generateFile: %v", err)
			}
			if len(resp.GetFile()) != 1 {
				t.Fatalf("got %d output files, want 1", len(resp.GetFile()))
			}
			out := resp.GetFile()[0]
			if out.GetName() != tt.wantName {
				t.Errorf("output file name = %q, want %q", out.GetName(), tt.wantName)
			}
			got := []byte(out.GetContent())
			checkGoSource(t, tt.wantName, got)

			if *update && !tt.committed {
				if err := os.MkdirAll(filepath.Dir(tt.golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(tt.golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s", tt.golden)
			}
			want, err := os.ReadFile(tt.golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				fix := "run go test -update, read the diff, and commit it"
				if tt.committed {
					fix = "run make proto"
				}
				t.Errorf("output differs from %s (%s):\n%s", tt.golden, fix, firstDiff(string(want), string(got)))
			}
		})
	}
}

// checkGoSource fails the test unless src is gofmt-clean Go that parses and
// starts with the line go generate's tooling looks for.
func checkGoSource(t *testing.T, name string, src []byte) {
	t.Helper()
	formatted, err := format.Source(src)
	if err != nil {
		t.Fatalf("gofmt: %v", err)
	}
	if !bytes.Equal(formatted, src) {
		t.Errorf("output is not gofmt-clean:\n%s", firstDiff(string(formatted), string(src)))
	}
	f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ParseComments)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if !strings.HasPrefix(string(src), "// Code generated by protoc-gen-myrpc. DO NOT EDIT.\n") {
		t.Errorf("output does not start with the generated-code line")
	}
	if !ast.IsGenerated(f) {
		t.Errorf("go/ast does not see the output as generated code")
	}
	checkImportsUsed(t, f)
}

// checkImportsUsed fails the test if f imports a package it never refers
// to, which the compiler refuses.
func checkImportsUsed(t *testing.T, f *ast.File) {
	t.Helper()
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	for _, imp := range f.Imports {
		path := strings.Trim(imp.Path.Value, `"`)
		name := path[strings.LastIndexByte(path, '/')+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if !used[name] {
			t.Errorf("import %s is not used", imp.Path.Value)
		}
	}
}

// firstDiff shows the first line where want and got differ, with a little
// context, which is enough to find the change.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g || i >= len(wl) || i >= len(gl) {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, w, g)
		}
	}
	return "(no line differs)"
}

func TestNoServices(t *testing.T) {
	tests := []struct {
		name     string
		files    []*descriptorpb.FileDescriptorProto
		generate string
	}{
		{
			name: "messages only",
			files: []*descriptorpb.FileDescriptorProto{{
				Name:        proto.String("plain/plain.proto"),
				Package:     proto.String("myrpc.testdata.plain"),
				Syntax:      proto.String("proto3"),
				Options:     &descriptorpb.FileOptions{GoPackage: proto.String("example.com/plain")},
				MessageType: []*descriptorpb.DescriptorProto{message("Note", field("text", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING))},
			}},
			generate: "plain/plain.proto",
		},
		{
			name:     "well-known type",
			files:    []*descriptorpb.FileDescriptorProto{emptyFile()},
			generate: "google/protobuf/empty.proto",
		},
		{
			// The services of an imported file are that file's business.
			name:     "services only in a dependency",
			files:    []*descriptorpb.FileDescriptorProto{emptyFile(), shopFile(), importer("shop/shop.proto")},
			generate: "user/user.proto",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := runPlugin(t, newRequest(tt.files, tt.generate))
			if err != nil {
				t.Fatalf("generateFile: %v", err)
			}
			if resp.Error != nil {
				t.Fatalf("response error: %s", resp.GetError())
			}
			for _, f := range resp.GetFile() {
				t.Errorf("unexpected output file %s", f.GetName())
			}
		})
	}
}

// importer is a file with no services of its own that imports dep.
func importer(dep string) *descriptorpb.FileDescriptorProto {
	return &descriptorpb.FileDescriptorProto{
		Name:       proto.String("user/user.proto"),
		Package:    proto.String("myrpc.testdata.user"),
		Dependency: []string{dep},
		Syntax:     proto.String("proto3"),
		Options:    &descriptorpb.FileOptions{GoPackage: proto.String("example.com/user")},
	}
}

func TestStreamingMethod(t *testing.T) {
	tests := []struct {
		name                       string
		clientStream, serverStream bool
	}{
		{name: "client streaming", clientStream: true},
		{name: "server streaming", serverStream: true},
		{name: "bidirectional", clientStream: true, serverStream: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := shopFile()
			watch := method("Watch", ".myrpc.testdata.shop.GetItemRequest", ".myrpc.testdata.shop.Item")
			watch.ClientStreaming = proto.Bool(tt.clientStream)
			watch.ServerStreaming = proto.Bool(tt.serverStream)
			// Put the streaming method in the second service, after unary
			// ones, so that nothing written before it survives.
			shop.Service[1].Method = append(shop.Service[1].Method, watch)

			resp, err := runPlugin(t, newRequest([]*descriptorpb.FileDescriptorProto{emptyFile(), shop}, "shop/shop.proto"))
			const want = "myrpc.testdata.shop.Checkout.Watch"
			if err == nil {
				t.Fatal("generateFile returned nil, want an error")
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			if !strings.Contains(resp.GetError(), want) {
				t.Errorf("response error %q does not name %s", resp.GetError(), want)
			}
			if len(resp.GetFile()) != 0 {
				t.Errorf("got %d output files with the error, want none", len(resp.GetFile()))
			}
		})
	}
}

func TestProtocVersion(t *testing.T) {
	tests := []struct {
		name    string
		version *pluginpb.Version
		want    string
	}{
		{name: "release", version: protoc321, want: "v3.21.12"},
		{
			name:    "suffix",
			version: &pluginpb.Version{Major: proto.Int32(4), Minor: proto.Int32(25), Patch: proto.Int32(0), Suffix: proto.String("rc1")},
			want:    "v4.25.0-rc1",
		},
		{name: "not sent", version: nil, want: "(unknown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest([]*descriptorpb.FileDescriptorProto{idleFile()}, "idle/idle.proto")
			req.CompilerVersion = tt.version
			gen, err := protogen.Options{}.New(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := protocVersion(gen); got != tt.want {
				t.Errorf("protocVersion = %q, want %q", got, tt.want)
			}
			resp, err := runPlugin(t, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetFile()) != 1 {
				t.Fatalf("got %d output files, want 1", len(resp.GetFile()))
			}
			if header := "// - protoc           " + tt.want + "\n"; !strings.Contains(resp.GetFile()[0].GetContent(), header) {
				t.Errorf("output has no line %q", header)
			}
		})
	}
}

// TestGeneratedCodeCompiles builds the stubs for the hand-made .proto files
// together with the messages protoc-gen-go writes for them, in a module of
// their own that uses this one, and runs go vet over it. Parsing shows the
// output is Go; this shows it is Go that compiles against package rpc.
func TestGeneratedCodeCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	protoModule, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, req := range map[string]*pluginpb.CodeGeneratorRequest{
		"shop": newRequest([]*descriptorpb.FileDescriptorProto{emptyFile(), shopFile()}, "shop/shop.proto"),
		"idle": newRequest([]*descriptorpb.FileDescriptorProto{idleFile()}, "idle/idle.proto"),
	} {
		gen, err := protogen.Options{}.New(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, f := range gen.Files {
			if !f.Generate {
				continue
			}
			internal_gengo.GenerateFile(gen, f)
			if err := generateFile(gen, f); err != nil {
				t.Fatalf("%s: generateFile: %v", name, err)
			}
		}
		resp := gen.Response()
		if resp.Error != nil {
			t.Fatalf("%s: %s", name, resp.GetError())
		}
		for _, f := range resp.GetFile() {
			writeFile(t, filepath.Join(dir, f.GetName()), []byte(f.GetContent()))
		}
	}

	// The module requires what this one requires, and this one from disk.
	goMod, err := os.ReadFile(filepath.Join(protoModule, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goMod = bytes.Replace(goMod, []byte("module myrpc/shared/proto\n"), []byte("module example.com\n"), 1)
	goMod = fmt.Appendf(goMod, "\nrequire myrpc/shared/proto v0.0.0\n\nreplace myrpc/shared/proto => %s\n", protoModule)
	writeFile(t, filepath.Join(dir, "go.mod"), goMod)
	goSum, err := os.ReadFile(filepath.Join(protoModule, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "go.sum"), goSum)

	cmd := exec.Command(goCmd, "vet", "./...")
	cmd.Dir = dir
	// Offline: everything the module needs is in the module cache already,
	// because this package was built from it.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet of the generated code: %v\n%s", err, out)
	}
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
