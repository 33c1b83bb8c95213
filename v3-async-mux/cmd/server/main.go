// Command server runs the V3 demo server: Greeter and Echo, configured by
// rpc.yaml. SIGINT or SIGTERM shuts it down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
	"myrpc/v3-async-mux/config"
	"myrpc/v3-async-mux/server"
)

// defaultShutdownTimeout bounds the graceful shutdown when rpc.yaml sets no
// server.shutdown_timeout.
const defaultShutdownTimeout = 5 * time.Second

func main() {
	configPath := flag.String("config", "rpc.yaml", "the configuration file")
	addr := flag.String("addr", "", "listen on host:port instead of the configured addresses")
	debug := flag.Bool("debug", false, "log every connection and call")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(log, *configPath, *addr); err != nil {
		log.Error("server failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, configPath, addr string) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	if addr != "" {
		cfg.Server.SetAddress(addr)
	}
	s := server.New(server.WithConfig(cfg.Server), server.WithLogger(log))
	helloworld.RegisterGreeterServer(s, services.Greeter{})
	echo.RegisterEchoServer(s, services.Echo{})

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
	log.Info("shutting down: no new connections; waiting for calls in flight", "timeout", timeout)
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
