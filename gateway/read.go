package gateway

import (
	"errors"
	"net"
	"net/http"

	"github.com/lesismal/llib/std/crypto/tls"
	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// read.go is the node's read path: every byte a client sends arrives here
// before nbio parses it (see docs/nbio.md for why).

// onData replaces nbio's read dispatch, for plain and TLS sockets alike,
// so that the gateway's bounds apply before nbio parses anything: the
// request-head cap before the upgrade, frameGuard after it, and a 1002
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
	pc, ok := c.Session().(nbhttp.ParserCloser)
	if !ok {
		return nil
	}
	tc, _ := unwrap(pc.UnderlayerConn()).(*tls.Conn)
	return tc
}

// onPlain handles plaintext read from socket c, over tc for TLS sockets
// (nil for plain ones).
func (s *Server) onPlain(c *nbio.Conn, data []byte, tc *tls.Conn) {
	pc, _ := c.Session().(nbhttp.ParserCloser)
	ws, ok := pc.(*websocket.Conn)
	if !ok {
		// Before the upgrade: the request is held to --max-header-bytes
		// as it arrives, not once nbio has buffered all of it.
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
		return
	}
	sess := wsSession(ws)
	if sess == nil {
		// Upgraded, but serveWS has not set the session yet: a client
		// that did not wait for the 101 is guarded all the same.
		if sess = s.pending.session(c); sess == nil {
			_ = c.Close()
			return
		}
		if err := s.feed(sess, ws, data); err != nil {
			_ = c.CloseWithError(err)
		}
		return
	}
	closing := sess.c.Closing()
	if closing && sess.c.CloseCode() == closeTooBig {
		// nbio stopped mid-message; what follows cannot be parsed.
		return
	}
	// A closing connection's input is still parsed, to see the peer's
	// answering close frame (nbio then drops the socket: the handshake is
	// done); its messages are ignored by the handlers.
	err := s.feed(sess, ws, data)
	if err == nil {
		return
	}
	if closing {
		_ = c.CloseWithError(err)
		return
	}
	if errors.Is(err, websocket.ErrMessageTooLarge) || errors.Is(err, websocket.ErrControlMessageTooBig) {
		// nbio has already written the 1009 close frame.
		sess.c.MarkClosing(closeTooBig)
		return
	}
	sess.c.Close(closeProtocolError, "protocol error")
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

// socketOf returns the connection a WebSocket writes to, unwrapped from
// nbhttp's hijack wrapper and from closeOnPoller's: *nbio.Conn for plain
// connections, *tls.Conn for TLS ones.
func socketOf(ws *websocket.Conn) net.Conn { return unwrap(ws.UnderlayerConn()) }

// unwrap returns c without nbhttp's hijack wrapper or closeOnPoller's.
func unwrap(c net.Conn) net.Conn {
	switch v := c.(type) {
	case *nbhttp.Conn:
		return v.Conn
	case nbioCloser:
		return v.Conn
	case tlsCloser:
		return v.Conn
	}
	return c
}

// sessionOf returns the session of a socket's WebSocket, or nil before the
// upgrade has set one.
func sessionOf(c *nbio.Conn) *session {
	ws, ok := c.Session().(*websocket.Conn)
	if !ok {
		return nil
	}
	return wsSession(ws)
}

// wsSession returns the session serveWS set on ws, or nil.
func wsSession(ws *websocket.Conn) *session {
	sess, _ := ws.Session().(*session)
	return sess
}
