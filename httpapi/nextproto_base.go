//go:build !watchdog_nextproto

package httpapi

import "github.com/gorilla/mux"

// nextProtoRoutes adds the routes of the watchdog_nextproto build's extra
// command kinds (nextproto.go): none in this build.
func (s *Server) nextProtoRoutes(*mux.Router) {}
