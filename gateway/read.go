package gateway

import (
	"net"
	"net/http"

	"github.com/lesismal/llib/std/crypto/tls"
	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// read.go is the node's read path: every byte a client sends arrives here
// before nbio parses it (see docs/nbio.md for why).

// onData replaces nbio's read dispatch, for plain and TLS sockets alike,
// so that the gateway's bounds apply before nbio parses anything: the
// request-head cap before the upgrade, then the WebSocket reader (wsread.go), with a 1002
// close frame for a protocol error (nbio would drop the socket silently).
func (s *Server) onData(c *nbio.Conn, data []byte) {
	if tc := tlsOf(c); tc != nil {
		s.onTLSData(c, tc, data)
		return
	}
	s.onPlain(c, data, nil)
}

// onTLSData decrypts as nbio's TLSDataHandler does, then hands each
// plaintext chunk to onPlain.
func (s *Server) onTLSData(c *nbio.Conn, tc *tls.Conn, data []byte) {
	defer tc.ResetOrFreeBuffer()
	in, buf := data, data
	for {
		_, n, err := tc.AppendAndRead(in, buf)
		in = nil
		if err != nil {
			_ = c.CloseWithError(err)
			return
		}
		if n == 0 {
			return
		}
		s.onPlain(c, buf[:n], tc)
	}
}

// tlsOf returns the TLS connection over socket c, or nil for plain ones.
func tlsOf(c *nbio.Conn) *tls.Conn {
	switch v := c.Session().(type) {
	case *tlsSession:
		return v.tc
	case nbhttp.ParserCloser:
		hc, _ := v.UnderlayerConn().(*nbhttp.Conn)
		if hc != nil {
			tc, _ := hc.Conn.(*tls.Conn)
			return tc
		}
	}
	return nil
}

// onPlain handles plaintext read from socket c, over tc for TLS sockets
// (nil for plain ones).
func (s *Server) onPlain(c *nbio.Conn, data []byte, tc *tls.Conn) {
	if sess := sessionOf(c); sess != nil {
		s.read(sess, c, data)
		return
	}
	pc, _ := c.Session().(nbhttp.ParserCloser)
	// Before the upgrade: the request is held to --max-header-bytes as it
	// arrives, not once nbio has buffered all of it.
	n, ok := s.pending.read(c, data, s.cfg.MaxHeaderBytes)
	if !ok {
		s.m.Refused("header_too_large")
		s.logs.line("handshake refused", "status", http.StatusRequestHeaderFieldsTooLarge,
			"reason", "request headers over --max-header-bytes", "remote", c.RemoteAddr().String())
		if tc != nil {
			_, _ = tc.Write([]byte(headersTooLarge))
		} else {
			_, _ = c.Write([]byte(headersTooLarge))
		}
		_ = c.Close()
		return
	}
	if data = data[:n]; len(data) == 0 {
		return
	}
	if tc == nil {
		c.DataHandler()(c, data)
	} else if pc == nil {
		_ = c.Close()
	} else if err := pc.Parse(data); err != nil {
		_ = c.CloseWithError(err)
	}
}

// oneAnswer serves only the first request a socket carries, with
// Connection: close; pipelined ones after it get no answer (taken over
// with Hijack, so nbio writes nothing for them). The client closes after
// the answer, or the handshake sweep does.
func (s *Server) oneAnswer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := requestConn(w); c != nil && !s.pending.answer(c) {
			if hj, ok := w.(http.Hijacker); ok {
				_, _, _ = hj.Hijack()
				return
			}
		}
		w.Header().Set("Connection", "close")
		h.ServeHTTP(w, r)
	})
}

// requestConn returns the socket a request arrived on, or nil when w is
// not nbio's.
func requestConn(w http.ResponseWriter) net.Conn {
	if res, ok := w.(*nbhttp.Response); ok && res.Parser != nil {
		return res.Parser.Conn
	}
	return nil
}

// tlsSession is the session of a TLS socket: it also holds the TLS
// connection that decrypts what arrives (plain sockets' sessions do not
// pay for the field).
type tlsSession struct {
	*session
	tc *tls.Conn
}

// sessionOf returns the session of an upgraded socket, or nil before the
// upgrade.
func sessionOf(c net.Conn) *session {
	nc, ok := c.(*nbio.Conn)
	if !ok {
		return nil
	}
	switch v := nc.Session().(type) {
	case *session:
		return v
	case *tlsSession:
		return v.session
	}
	return nil
}
