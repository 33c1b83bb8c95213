package registry_test

import (
	"context"
	"fmt"
	"time"

	"myrpc/v5-cluster/etcdlocal"
	"myrpc/v5-cluster/registry"
)

// A server registers its address; a client's resolver follows it.
func Example() {
	ctx := context.Background()
	etcd, err := etcdlocal.Start(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer etcd.Close()
	cli, err := registry.NewClient(etcd.Endpoints())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()

	reg, err := registry.Register(ctx, cli, "echo", "127.0.0.1:7001", 10*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	addrs := make(chan []string, 4)
	res, err := registry.NewResolver(cli).Resolve("echo", func(a []string) { addrs <- a })
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Close()
	fmt.Println(<-addrs)

	if err := reg.Deregister(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-addrs)
	// Output:
	// [127.0.0.1:7001]
	// []
}
