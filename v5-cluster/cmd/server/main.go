// Command server runs the V5 demo server: Greeter and Echo, configured by
// rpc.yaml. SIGINT or SIGTERM shuts it down gracefully. With a service
// named in rpc.yaml's registry section, it registers its address in etcd
// under that name, and takes it out first when it shuts down. Every
// response carries the trailer served-by, the server's process id, so that
// a client can tell which server answered it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/services"
	"myrpc/v5-cluster/config"
	"myrpc/v5-cluster/registry"
	"myrpc/v5-cluster/server"
)

// defaultShutdownTimeout bounds the graceful shutdown when rpc.yaml sets no
// server.shutdown_timeout.
const defaultShutdownTimeout = 5 * time.Second

func main() {
	configPath := flag.String("config", "rpc.yaml", "the configuration file")
	addr := flag.String("addr", "", "listen on host:port instead of the configured addresses")
	debug := flag.Bool("debug", false, "log every connection and call")
	statsAddr := flag.String("stats-addr", "", "serve the server's counters as JSON at http://host:port/stats (off if empty)")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(log, *configPath, *addr, *statsAddr); err != nil {
		log.Error("server failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, configPath, addr, statsAddr string) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	if addr != "" {
		cfg.Server.SetAddress(addr)
	}
	opts := []server.Option{server.WithConfig(cfg.Server), server.WithLogger(log), server.WithInterceptors(servedBy)}
	if r := cfg.Registry; r.Service != "" {
		cli, err := registry.NewClient(r.Endpoints)
		if err != nil {
			return err
		}
		// Closed after Shutdown, which takes the key out through it.
		defer cli.Close()
		opts = append(opts, server.WithRegistry(cli, r.Service, r.TTL), server.WithAdvertiseAddr(r.Advertise))
		if r.DeregisterWait != nil {
			opts = append(opts, server.WithDeregisterWait(*r.DeregisterWait))
		}
	}
	s := server.New(opts...)
	helloworld.RegisterGreeterServer(s, services.Greeter{})
	echo.RegisterEchoServer(s, services.Echo{})
	if statsAddr != "" {
		stop, err := serveStats(log, s, statsAddr)
		if err != nil {
			return err
		}
		defer stop()
	}

	// Signal handling belongs to the program, not to the library.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- s.ListenAndServe() }()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	timeout := cfg.Server.ShutdownTimeout
	if timeout == 0 {
		timeout = defaultShutdownTimeout
	}
	log.Info("shutting down: calls in flight may finish", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, server.ErrServerClosed) {
		return err
	}
	log.Info("shut down cleanly")
	return nil
}

// servedBy sets the trailer served-by, this process's id, on every
// response.
func servedBy(ctx context.Context, req proto.Message, _ *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (proto.Message, error) {
	_ = rpc.SetTrailer(ctx, rpc.Metadata{ServedBy: strconv.Itoa(os.Getpid())})
	return handler(ctx, req)
}

// ServedBy is the trailer that names the server that answered.
const ServedBy = "served-by"

// serveStats serves the server's counters (server.Stats), its goroutines
// and its resident memory as JSON at http://statsAddr/stats, for the demo
// client to show what the server saw. stop closes it.
func serveStats(log *slog.Logger, s *server.Server, statsAddr string) (stop func(), err error) {
	lis, err := net.Listen("tcp", statsAddr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"rpc":        s.Stats(),
			"goroutines": runtime.NumGoroutine(),
			"rss_bytes":  residentBytes(),
		})
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("stats: serving", "url", "http://"+lis.Addr().String()+"/stats")
	go hs.Serve(lis)
	return func() { hs.Close() }, nil
}

// residentBytes returns the memory the process holds in RAM (its RSS),
// from /proc on Linux; 0 elsewhere.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		return 0
	}
	return resident * int64(os.Getpagesize())
}
