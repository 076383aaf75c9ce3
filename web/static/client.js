// client.js: a small client for the chat gateway's WebSocket protocol v1.
// No dependencies; an ES module. The chat page at / is built on it.
//
//   import { ChatClient } from "/client.js";
//   const c = new ChatClient({ url: "ws://host/ws", user: "alice" });
//   c.addEventListener("message", (e) => show(e.detail));
//   await c.connect();
//   await c.join("general", { limit: 50 });
//   await c.send("general", "hi");
//
// What it takes care of: replies matched to requests by id (with a timeout);
// reconnecting with exponential backoff and full jitter; re-joining every
// room with `since` and dropping what was already seen (by seq); a random
// idempotency key on every send and dm, and re-sending the unacknowledged
// ones after a reconnect, so a message typed during a network blip arrives
// exactly once; an application ping when the socket is quiet; close codes
// (4002: stop; 4000: get a new token, then reconnect; 1001: reconnect at
// once, with jitter).
//
// Events (CustomEvent; detail is the server's frame unless said): welcome,
// joined, message, presence, typing, read; state ({state, retryIn, code,
// ...}); close ({code, reason}); error (a ChatError); and reset, before the
// joined frame (its detail) of a room whose history was lost on the
// server (a new epoch). After a reset the room's seq starts over, so
// messages are de-duplicated by seq within one epoch: the new epoch's
// seq 1, 2, ... are delivered, not taken for the old ones.

export class ChatError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

const BACKOFF_MIN = 500;
const BACKOFF_MAX = 30000;
const PONG_WAIT = 10000;

function randomKey() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export class ChatClient extends EventTarget {
  // options: url (ws://.../ws), user (anonymous mode) or token, getToken
  // (async () => a fresh token, for 4000), timeout (ms per request, 10000),
  // WebSocket (an implementation, for non-browser use).
  constructor(options) {
    super();
    this.opts = { timeout: 10000, ...options };
    this.token = options.token || "";
    this.state = "idle";
    this.ws = null;
    this.nextId = 1;
    this.waiting = new Map(); // id -> {resolve, reject, timer}
    this.rooms = new Map(); // room -> {seq, epoch}: rooms to be in, and the last seq seen
    this.unacked = new Map(); // key -> {frame, resolve, reject}: sends and dms not acknowledged yet
    this.attempt = 0;
    this.stopped = false;
    this.heartbeat = 25;
    this.lastHeard = 0;
    this.welcome = null;
  }

  // connect opens the connection and resolves on the server's welcome.
  connect() {
    this.stopped = false;
    return new Promise((resolve, reject) => {
      this._onFirstWelcome = { resolve, reject };
      this._open();
    });
  }

  // close ends the connection for good.
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.idleTimer);
    if (this.ws) this.ws.close(1000, "bye");
    this._setState("closed");
  }

  _setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...extra } }));
  }

  _url() {
    const u = new URL(this.opts.url, location.href);
    if (this.token) u.searchParams.set("token", this.token);
    else if (this.opts.user) u.searchParams.set("user", this.opts.user);
    return u.toString();
  }

  _open() {
    const WS = this.opts.WebSocket || WebSocket;
    this._setState(this.attempt === 0 ? "connecting" : "reconnecting", { retryIn: 0 });
    const ws = new WS(this._url());
    this.ws = ws;
    ws.onmessage = (ev) => this._frame(ev.data);
    ws.onclose = (ev) => this._closed(ws, ev.code, ev.reason);
    ws.onerror = () => {}; // onclose follows
  }

  _closed(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearInterval(this.idleTimer);
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new ChatError("disconnected", "connection lost"));
      this.waiting.delete(id);
    }
    this.dispatchEvent(new CustomEvent("close", { detail: { code, reason } }));
    if (this.stopped) return;
    if (code === 4002) {
      // Repeated abuse: reconnecting would only repeat it.
      this.stopped = true;
      this._setState("stopped", { code, reason });
      this._failUnacked(new ChatError("stopped", "closed for repeated rate-limit violations"));
      if (this._onFirstWelcome) this._onFirstWelcome.reject(new ChatError("stopped", reason));
      return;
    }
    let delay;
    if (code === 1001) {
      delay = Math.random() * 1000; // the node is draining: go at once, spread out
    } else {
      const cap = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.attempt);
      delay = Math.max(BACKOFF_MIN / 2, Math.random() * cap); // full jitter
    }
    this.attempt++;
    this._setState("reconnecting", { retryIn: Math.ceil(delay / 1000), code });
    this.retryTimer = setTimeout(async () => {
      if (code === 4000 && this.opts.getToken) {
        try {
          this.token = await this.opts.getToken();
        } catch (e) {
          this.dispatchEvent(new CustomEvent("error", { detail: e }));
        }
      }
      if (!this.stopped) this._open();
    }, delay);
  }

  _failUnacked(err) {
    for (const [key, u] of this.unacked) {
      u.reject(err);
      this.unacked.delete(key);
    }
  }

  _frame(data) {
    this.lastHeard = Date.now();
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (f.type === "welcome") return this._welcome(f);
    if (f.id && this.waiting.has(f.id)) {
      const w = this.waiting.get(f.id);
      this.waiting.delete(f.id);
      clearTimeout(w.timer);
      if (f.type === "error") w.reject(new ChatError(f.code, f.message));
      else w.resolve(f);
      if (f.type !== "joined") return;
    }
    switch (f.type) {
      case "joined":
        return this._joined(f);
      case "message":
        return this._message(f);
      case "presence":
      case "typing":
      case "read":
        if (!f.id) this.dispatchEvent(new CustomEvent(f.type, { detail: f }));
        return;
      case "error":
        this.dispatchEvent(new CustomEvent("error", { detail: new ChatError(f.code, f.message) }));
    }
  }

  async _welcome(f) {
    this.welcome = f;
    this.heartbeat = f.heartbeat || 25;
    this.attempt = 0;
    this._setState("online", { user: f.user });
    this.dispatchEvent(new CustomEvent("welcome", { detail: f }));
    this._watchIdle();
    // Resume every room, the inbox included (the server joins it anew, from
    // its latest seq), then re-send what was never acknowledged.
    const resumes = [];
    for (const [room, st] of this.rooms) {
      if (!st.epoch) continue;
      st.resuming = true;
      st.held = [];
      const req = { type: "join", room, since: { seq: st.seq, epoch: st.epoch } };
      resumes.push(
        this.request(req)
          .catch((e) => this.dispatchEvent(new CustomEvent("error", { detail: e })))
          .finally(() => this._resumed(room)),
      );
    }
    await Promise.all(resumes);
    for (const [key, u] of this.unacked) this._sendUnacked(key, u);
    if (this._onFirstWelcome) {
      this._onFirstWelcome.resolve(f);
      this._onFirstWelcome = null;
    }
  }

  // _resumed delivers what arrived live while a room's resume was pending
  // (only the inbox can have any: the server re-joins it on connect).
  _resumed(room) {
    const st = this.rooms.get(room);
    if (!st || !st.resuming) return;
    st.resuming = false;
    const held = st.held;
    st.held = [];
    for (const m of held) this._message(m);
  }

  _joined(f) {
    const st = this.rooms.get(f.room);
    const inbox = f.room.startsWith("@");
    if (!st && !inbox) return; // left meanwhile
    const known = st && st.epoch;
    if (known && !f.id && st.resuming && st.epoch === f.epoch) {
      return; // the server's own re-join of the inbox: our resume covers it
    }
    const fresh = !known || st.epoch !== f.epoch;
    if (known && fresh) {
      // The room's history was lost (a new epoch): what was shown is void.
      this.dispatchEvent(new CustomEvent("reset", { detail: f }));
    }
    const cur = st || { seq: 0, epoch: "" };
    if (fresh) cur.seq = 0;
    cur.epoch = f.epoch;
    this.rooms.set(f.room, cur);
    const resuming = cur.resuming;
    cur.resuming = false; // the joined frame itself is delivered now
    for (const m of f.messages || []) this._message(m);
    cur.resuming = resuming;
    if (f.seq > cur.seq && (!known || !f.recovered)) cur.seq = f.seq;
    this.dispatchEvent(new CustomEvent("joined", { detail: f }));
  }

  // Messages of a room arrive in seq order; anything at or below the last
  // seq seen was delivered already (a resume overlapping live traffic).
  _message(m) {
    const st = this.rooms.get(m.room);
    if (!st) return; // a room left meanwhile
    if (st.resuming) {
      st.held.push(m);
      return;
    }
    if (m.seq <= st.seq) return;
    st.seq = m.seq;
    this.dispatchEvent(new CustomEvent("message", { detail: m }));
  }

  _watchIdle() {
    clearInterval(this.idleTimer);
    let pingSent = 0;
    this.idleTimer = setInterval(() => {
      const quiet = Date.now() - this.lastHeard;
      if (pingSent && Date.now() - pingSent > PONG_WAIT && quiet > PONG_WAIT) {
        // No pong: the connection is dead though no close was seen.
        pingSent = 0;
        if (this.ws) this.ws.close(4999, "no pong");
        return;
      }
      if (!pingSent && quiet > this.heartbeat * 1000) {
        pingSent = Date.now();
        this.request({ type: "ping" }).then(() => (pingSent = 0), () => {});
      }
    }, 1000);
  }

  // request sends a frame with a fresh id and resolves with the reply that
  // carries it, or rejects with a ChatError (error reply, timeout,
  // disconnected).
  request(frame, timeout = this.opts.timeout) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== 1) {
        reject(new ChatError("disconnected", "not connected"));
        return;
      }
      const id = String(this.nextId++);
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new ChatError("timeout", "no reply to " + frame.type));
      }, timeout);
      this.waiting.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  _fire(frame) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(frame));
  }

  // join enters a room (limit: how many recent messages come with it) and
  // keeps it across reconnects.
  async join(room, { limit } = {}) {
    if (!this.rooms.has(room)) this.rooms.set(room, { seq: 0, epoch: "" });
    const req = { type: "join", room };
    if (limit !== undefined) req.limit = limit;
    try {
      return await this.request(req);
    } catch (e) {
      if (e.code !== "disconnected" && e.code !== "timeout") this.rooms.delete(room);
      throw e;
    }
  }

  async leave(room) {
    this.rooms.delete(room);
    return this.request({ type: "leave", room });
  }

  // send and dm resolve with the ack. While disconnected they wait, and
  // are sent (again) with the same key after the reconnect.
  send(room, text, data) {
    const frame = { type: "send", room };
    if (text !== undefined && text !== null) frame.text = text;
    if (data !== undefined) frame.data = data;
    return this._keyed(frame);
  }

  dm(to, text, data) {
    const frame = { type: "dm", to };
    if (text !== undefined && text !== null) frame.text = text;
    if (data !== undefined) frame.data = data;
    return this._keyed(frame);
  }

  _keyed(frame) {
    if (this.stopped) {
      // close() or 4002: nothing would ever send it.
      return Promise.reject(new ChatError("stopped", "the client is closed"));
    }
    const key = randomKey();
    return new Promise((resolve, reject) => {
      const u = { frame: { ...frame, key }, resolve, reject };
      this.unacked.set(key, u);
      if (this.state === "online") this._sendUnacked(key, u);
    });
  }

  _sendUnacked(key, u) {
    this.request(u.frame).then(
      (ack) => {
        this.unacked.delete(key);
        u.resolve(ack);
      },
      (e) => {
        // Lost with the connection (or timed out): kept, sent again with the
        // same key after the reconnect. Refused by the server: given up.
        if (e.code === "disconnected") return;
        if (e.code === "timeout" || e.code === "unavailable" || e.code === "rate_limited") {
          setTimeout(() => this.unacked.has(key) && this.state === "online" && this._sendUnacked(key, u), 1000);
          return;
        }
        this.unacked.delete(key);
        u.reject(e);
      },
    );
  }

  typing(room) {
    this._fire({ type: "typing", room });
  }

  read(room, seq) {
    this._fire({ type: "read", room, seq });
  }

  history(room, { before, limit } = {}) {
    const req = { type: "history", room };
    if (before !== undefined) req.before = before;
    if (limit !== undefined) req.limit = limit;
    return this.request(req);
  }

  presence(room) {
    return this.request({ type: "presence", room });
  }

  refresh(token) {
    this.token = token;
    return this.request({ type: "refresh", token });
  }
}
