// Command protoc-gen-myrpc is a protoc plugin that writes myrpc stubs: for
// every service in a .proto file, a client stub, a server interface, a
// register function and a ServiceDesc, in a file named *_myrpc.pb.go beside
// the file protoc-gen-go writes.
//
//	protoc --go_out=. --go_opt=paths=source_relative \
//	       --myrpc_out=. --myrpc_opt=paths=source_relative your.proto
//
// The stubs depend only on package myrpc/shared/proto/rpc, so a server or
// client of any stage can use them.
package main

import (
	"flag"
	"fmt"
	"os"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Printf("protoc-gen-myrpc %s\n", version)
		os.Exit(0)
	}
	var flags flag.FlagSet
	protogen.Options{ParamFunc: flags.Set}.Run(func(gen *protogen.Plugin) error {
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
		for _, f := range gen.Files {
			if !f.Generate {
				continue
			}
			if err := generateFile(gen, f); err != nil {
				return err
			}
		}
		return nil
	})
}
