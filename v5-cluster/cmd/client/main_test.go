package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
	"myrpc/v5-cluster/config"
	"myrpc/v5-cluster/etcdtest"
	"myrpc/v5-cluster/server"
)

func TestMain(m *testing.M) {
	// ants starts a default pool when it is imported: its goroutines are
	// there before any test runs. etcdtest's check gives the goroutines of
	// the etcd that the tests start time to end.
	etcdtest.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// TestNewClientEtcdTarget: a target etcd:///<service> reaches the servers
// registered under the service in the etcd of the registry section.
func TestNewClientEtcdTarget(t *testing.T) {
	etcd := etcdtest.Start(t)
	s := server.New(server.WithRegistry(etcd.Client(), "test.Demo", 0), server.WithDeregisterWait(0))
	helloworld.RegisterGreeterServer(s, services.Greeter{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	defer func() {
		s.Shutdown(context.Background())
		<-served
	}()

	cfg := &config.Config{Registry: config.Registry{Endpoints: etcd.Endpoints()}}
	c, closeAll, err := newClient(cfg, "etcd:///test.Demo")
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	// The first call may come before the resolver has read etcd, or before
	// the server has registered: it is tried until it is answered.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		reply, err := helloworld.NewGreeterClient(c).Hello(ctx, &helloworld.HelloRequest{Msg: "etcd"})
		cancel()
		if err == nil {
			if reply.GetMsg() != "Hello etcd" {
				t.Fatalf("reply %q", reply.GetMsg())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer through etcd:///test.Demo: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if eps := c.Endpoints(); len(eps) != 1 || eps[0].Addr != lis.Addr().String() {
		t.Fatalf("endpoints %+v, want the server's %s", eps, lis.Addr())
	}
}

// TestNewClientEtcdTargetNeedsEndpoints: an etcd target with no etcd in
// the config, or another scheme, fails at once and says why.
func TestNewClientEtcdTargetNeedsEndpoints(t *testing.T) {
	for target, want := range map[string]string{
		"etcd:///test.Demo":   "registry section names no etcd endpoints",
		"consul:///test.Demo": "not etcd",
	} {
		if _, _, err := newClient(&config.Config{}, target); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("newClient(%s) = %v, want an error saying %q", target, err, want)
		}
	}
}
