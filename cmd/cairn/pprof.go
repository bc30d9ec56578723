package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// allowRemotePprofEnv names the environment variable that lets pprof listen
// on a non-loopback address. Profiles expose internals and the endpoints can
// be used to burn CPU, so this must be a deliberate choice.
const allowRemotePprofEnv = "CAIRN_PPROF_ALLOW_REMOTE"

// startPprof serves net/http/pprof on addr ("" = off) until ctx ends. The
// listener is bound before returning, so a busy port fails loudly. Only
// loopback addresses are accepted unless CAIRN_PPROF_ALLOW_REMOTE=true.
func startPprof(ctx context.Context, addr string, logger *slog.Logger) error {
	if addr == "" {
		return nil
	}
	if err := checkPprofAddr(addr, os.Getenv(allowRemotePprofEnv) == "true"); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("pprof listening", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return nil
}

// checkPprofAddr refuses addresses that are not loopback unless allowRemote.
func checkPprofAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return &configError{fmt.Sprintf("CAIRN_PPROF_ADDR %q: %v", addr, err)}
	}
	if allowRemote {
		return nil
	}
	ip := net.ParseIP(host)
	if host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil
	}
	return &configError{fmt.Sprintf("CAIRN_PPROF_ADDR %q is not a loopback address; set %s=true to expose pprof beyond this machine", addr, allowRemotePprofEnv)}
}
