// Command relying-party is a small app that signs people in through Doorman
// (OpenID Connect) and is signed out by Doorman's back-channel logout. Run it
// beside `go run .`; README.md in this folder says how.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"doorman/examples/relying-party/rp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		slog.Error("relying-party", "err", err)
		os.Exit(1)
	}
}

// run parses flags, builds the RP and serves it until ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("relying-party", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "http://127.0.0.1:8080", "the OpenID Connect provider's issuer URL (Doorman's -base-url)")
	clientID := fs.String("client-id", "", "client_id printed by `go run . apps add` (required)")
	// The secret may come from the environment so that it stays out of `ps`.
	clientSecret := fs.String("client-secret", getenv("RP_CLIENT_SECRET"), "client_secret of a confidential client (or RP_CLIENT_SECRET); empty for a public client")
	addr := fs.String("addr", "127.0.0.1:9090", "address to listen on")
	baseURL := fs.String("base-url", "", "this app's origin as the browser sees it (default http://ADDR); the redirect URI is BASE-URL/callback")
	scopes := fs.String("scopes", "openid email", "scopes to ask for, space-separated (add offline_access to stay signed in while away)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clientID == "" {
		fs.Usage()
		return errors.New("-client-id is required: register the app with `go run . apps add …` (see examples/relying-party/README.md)")
	}
	if *baseURL == "" {
		*baseURL = "http://" + *addr
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	app, err := rp.New(rp.Config{
		Issuer:       *issuer,
		ClientID:     *clientID,
		ClientSecret: *clientSecret,
		BaseURL:      *baseURL,
		Scopes:       strings.Fields(*scopes),
		Logger:       log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           app,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("relying party listening", "url", *baseURL, "issuer", *issuer, "client_id", *clientID, "public_client", *clientSecret == "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
