package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// fixedJSON returns a JSON object of exactly size bytes (at least 16).
func fixedJSON(size int) []byte {
	const head, tail = `{"padding":"`, `"}`
	n := max(size-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", n) + tail)
}

// serveBaseline runs the bare Echo handler the suite compares with: every
// request gets the same fixed JSON body, with no middleware, no session,
// no database.
func serveBaseline(ctx context.Context, addr string, size int) error {
	body := fixedJSON(size)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	h := func(c echo.Context) error { return c.JSONBlob(http.StatusOK, body) }
	e.Any("/*", h)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
