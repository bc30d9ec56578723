package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// allowRemotePprofEnv names the environment variable that lets pprof listen
// on a non-loopback address. Profiles expose internals and the endpoints can
// be used to burn CPU, so this must be a deliberate choice.
const allowRemotePprofEnv = "CAIRN_PPROF_ALLOW_REMOTE"

// pprofServer is the net/http/pprof server Main runs when CAIRN_PPROF_ADDR
// is set: started in Main.Open, stopped in Main.Close.
type pprofServer struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{}
}

// startPprof serves net/http/pprof on addr; "" means off (nil server, nil
// error). The listener is bound before returning, so a busy port fails
// loudly. Only loopback addresses are accepted unless allowRemote
// (CAIRN_PPROF_ALLOW_REMOTE=true).
func startPprof(addr string, allowRemote bool, logger *slog.Logger) (*pprofServer, error) {
	if addr == "" {
		return nil, nil
	}
	if err := checkPprofAddr(addr, allowRemote); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	p := &pprofServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, addr: ln.Addr(), done: make(chan struct{})}
	logger.Info("pprof listening", "addr", ln.Addr().String())
	go func() {
		defer close(p.done)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof server stopped", "err", err)
		}
	}()
	return p, nil
}

// Addr returns the address pprof listens on.
func (p *pprofServer) Addr() net.Addr { return p.addr }

// Close stops the pprof server: its listener is closed when Close returns;
// in-flight profiles get until ctx ends, then are cut off.
func (p *pprofServer) Close(ctx context.Context) error {
	err := p.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("pprof shutdown: %w", err), p.srv.Close())
	}
	<-p.done
	return err
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
