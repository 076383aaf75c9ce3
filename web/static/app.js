// The chat page. Everything the user or another user typed goes into the
// page through textContent, never as HTML.
import { ChatClient } from "/client.js";

const $ = (id) => document.getElementById(id);
const wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

let client = null;
let me = "";
let current = ""; // the room shown
// room -> {msgs: [] (messages and markers, in order), pending: [] (own
// messages not seen back yet, shown below msgs), unread, users: Set,
// reads: Map(user -> seq), typing: Map(user -> timer), older: the
// scrollback's state (see newOlder)}
const rooms = new Map();
let countdown = null;
const list = $("messages");
// The list's first item, always there: the scrollback's line.
const older = $("older");
// A room keeps at most MAX_SHOWN entries, dropping the oldest as new ones
// come, unless the user is reading up the list.
const MAX_SHOWN = 500;

function roomState(room) {
  if (!rooms.has(room)) {
    rooms.set(room, {
      msgs: [],
      pending: [],
      unread: 0,
      users: new Set(),
      reads: new Map(),
      typing: new Map(),
      older: newOlder(),
    });
  }
  return rooms.get(room);
}

const inbox = () => "@" + me;
const label = (room) => (room === inbox() ? "Direct messages" : "#" + room);

function showError(text) {
  $("error").textContent = text || "";
}

// lastSeq is the seq of the newest message of the room's current epoch (0
// if none has come since a history reset).
function lastSeq(st) {
  const e = st.msgs[st.msgs.length - 1];
  return e && !e.marker ? e.seq : 0;
}

// --- connection state ---------------------------------------------------

function showState(d) {
  const el = $("state");
  clearInterval(countdown);
  el.className = d.state;
  // Who is online is only known while the page is.
  $("online").classList.toggle("stale", d.state !== "online");
  $("online").title = d.state === "online" ? "" : "as of the last connection";
  switch (d.state) {
    case "connecting":
      el.textContent = "connecting…";
      break;
    case "online":
      el.textContent = "online as " + me;
      break;
    case "reconnecting": {
      let left = d.retryIn || 0;
      const tick = () => {
        el.textContent = left > 0 ? `reconnecting in ${left} s` : "reconnecting…";
        left--;
      };
      tick();
      countdown = setInterval(tick, 1000);
      break;
    }
    case "stopped":
      el.textContent = "disconnected: " + (d.reason || "stopped");
      break;
    default:
      el.textContent = d.state;
  }
}

// --- the message list's scrolling -----------------------------------------

// The list sticks to the bottom while the user is there; new messages
// below the fold show the "new messages" button instead.
const atBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 40;
let stuck = true;

function toBottom() {
  list.scrollTop = list.scrollHeight;
  stuck = true;
  $("new-msgs").hidden = true;
}

list.addEventListener("scroll", () => {
  stuck = atBottom();
  if (stuck) $("new-msgs").hidden = true;
  nearTop();
});
// At the top already (or a list too short to scroll), scrolling up further
// with the wheel or the keys moves nothing, so fires no scroll event: it
// asks for older messages too (a retry after an error, say).
list.addEventListener("wheel", (ev) => ev.deltaY < 0 && nearTop(), { passive: true });
list.addEventListener("keydown", (ev) => ["PageUp", "Home", "ArrowUp"].includes(ev.key) && nearTop());
// A narrower or shorter list (a phone's keyboard, a rotation) keeps the
// newest message in view.
new ResizeObserver(() => {
  if (stuck) toBottom();
  nearTop();
}).observe(list);
$("new-msgs").addEventListener("click", () => {
  toBottom();
  $("text").focus();
});

// --- rendering ------------------------------------------------------------

function renderRooms() {
  const ul = $("rooms");
  ul.replaceChildren();
  let unread = 0;
  for (const [room, st] of rooms) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.room = room;
    b.textContent = label(room);
    if (room === current) b.setAttribute("aria-current", "true");
    if (st.unread && room !== current) {
      unread += st.unread;
      const u = document.createElement("span");
      u.className = "unread";
      u.textContent = String(st.unread);
      b.append(u);
    }
    b.addEventListener("click", () => show(room));
    li.append(b);
    ul.append(li);
  }
  $("menu-unread").hidden = !unread;
  $("menu-unread").textContent = String(unread);
}

function fmtTime(ts) {
  const d = new Date(ts);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function msgItem(m) {
  const li = document.createElement("li");
  li.className = "msg";
  if (m.seq !== undefined) li.dataset.seq = String(m.seq);
  li.dataset.room = m.room;
  const time = document.createElement("time");
  time.className = "time";
  time.dateTime = new Date(m.ts).toISOString();
  time.textContent = fmtTime(m.ts);
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = m.from;
  li.append(time, from);
  if (m.to) {
    const to = document.createElement("span");
    to.className = "to";
    to.textContent = "→ " + m.to;
    li.append(to);
  }
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = m.text !== undefined ? m.text : JSON.stringify(m.data);
  li.append(text);
  return li;
}

function entryItem(e) {
  if (!e.marker) return msgItem(e);
  const li = document.createElement("li");
  li.className = "marker";
  li.setAttribute("role", "separator");
  li.textContent = "history was reset on the server";
  return li;
}

// A message of our own that is not confirmed yet, kept at the bottom.
function localItem(p) {
  const li = msgItem({ room: p.room, from: me, text: p.text, ts: p.ts });
  li.classList.add("local", "pending");
  p.status = document.createElement("span");
  p.status.className = "status";
  p.status.textContent = "sending…";
  li.append(p.status);
  return li;
}

function renderMessages() {
  const st = roomState(current);
  while (older.nextSibling) older.nextSibling.remove();
  list.append(...st.msgs.map(entryItem), ...st.pending.map((p) => p.li));
  toBottom();
  renderOlder();
  nearTop();
  renderEmpty();
  renderSeen();
  renderTyping();
  renderOnline();
}

function renderEmpty() {
  const st = roomState(current);
  const el = $("empty");
  el.hidden = !!(st.msgs.length || st.pending.length);
  el.textContent = current === inbox() ? "No direct messages yet" : "No messages yet — say hello";
}

function renderSeen() {
  const st = roomState(current);
  const last = lastSeq(st);
  const who = [...st.reads].filter(([u, seq]) => u !== me && last && seq >= last).map(([u]) => u).sort();
  $("seen").textContent = who.length ? "seen by " + who.join(", ") : "";
}

function renderTyping() {
  const who = [...roomState(current).typing.keys()].filter((u) => u !== me).sort();
  $("typing").textContent = who.length ? who.join(", ") + (who.length === 1 ? " is typing…" : " are typing…") : "";
}

function renderOnline() {
  const ul = $("online");
  ul.replaceChildren(
    ...[...roomState(current).users].sort().map((u) => {
      const li = document.createElement("li");
      li.textContent = u;
      return li;
    }),
  );
}

// The rooms sidebar is a drawer on a phone's width, opened from the header.
function openSide(open) {
  $("chat").classList.toggle("side-open", open);
  $("menu").setAttribute("aria-expanded", String(open));
}
$("menu").addEventListener("click", () => openSide(!$("chat").classList.contains("side-open")));
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && $("chat").classList.contains("side-open")) {
    openSide(false);
    $("menu").focus();
  }
});

function show(room) {
  current = room;
  roomState(room).unread = 0;
  openSide(false);
  $("room-name").textContent = label(room);
  $("leave").hidden = room === inbox();
  $("composer").hidden = room === inbox();
  renderRooms();
  renderMessages();
  markRead();
  if (room !== inbox()) refreshPresence(room);
}

// append adds an entry (a message or a marker) to a room, above its
// unconfirmed messages, keeping the view at the bottom if it was there.
// Past MAX_SHOWN entries the oldest go, unless the user is reading up the
// list (they go with a later message): scrolling back loads them again.
function append(st, e, room) {
  st.msgs.push(e);
  const shown = room === current;
  const follow = shown && (stuck || atBottom());
  if (!shown || follow) {
    while (st.msgs.length > MAX_SHOWN) {
      st.msgs.shift();
      if (shown) older.nextElementSibling.remove();
      st.older.done = false;
    }
  }
  if (!shown) return;
  list.insertBefore(entryItem(e), list.querySelector("li.local"));
  if (follow) toBottom();
  else if (e.from !== me) $("new-msgs").hidden = false;
  renderEmpty();
  renderOlder();
}

// --- older messages: scrolling back ------------------------------------------

// Scrolled to (near) the top of the list, the page asks for the OLDER_PAGE
// messages before the oldest it shows, and puts them above it, the view
// staying where it was. One request at a time per room; a reply with fewer
// than asked means the room has no older ones.
const OLDER_PAGE = 50;
const NEAR_TOP = 80; // px

// newOlder is a room's scrollback state: loading (a request is out), done
// (the beginning of the room's history is shown), error (why the last
// request failed; the next scroll up retries).
function newOlder() {
  return { loading: false, done: false, error: "" };
}

// oldestSeq is the seq to load older messages before: the oldest message
// shown, or 0 when there is none, or when what the list shows starts in an
// earlier epoch (above a history reset marker), which is gone on the
// server.
function oldestSeq(st) {
  if (!st.msgs.length || st.msgs.some((e) => e.marker)) return 0;
  return st.msgs[0].seq;
}

function renderOlder() {
  const st = roomState(current);
  const o = st.older;
  const first = st.msgs[0];
  let text = "";
  if (o.loading) text = "loading older messages…";
  else if (o.error) text = "could not load older messages: " + o.error;
  else if (o.done || (first && !first.marker && first.seq === 1)) text = "beginning of the history";
  const span = $("older-text");
  if (span.textContent !== text) span.textContent = text;
  const failed = !o.loading && !!o.error;
  older.classList.toggle("failed", failed);
  $("older-retry").hidden = !failed;
}

function nearTop() {
  if (current && list.scrollTop < NEAR_TOP) loadOlder();
}

function loadOlder() {
  const room = current;
  const st = roomState(room);
  const o = st.older;
  const before = oldestSeq(st);
  // Nothing comes before seq 1, in any epoch.
  if (!client || o.loading || o.done || before <= 1) return;
  o.loading = true;
  o.error = "";
  const top = st.msgs[0];
  renderOlder();
  // A reply for a room left, or whose history was reset, meanwhile is
  // dropped (its state is another object then).
  const stale = () => rooms.get(room) !== st || st.older !== o;
  client.history(room, { before, limit: OLDER_PAGE }).then(
    (r) => {
      if (stale()) return;
      o.loading = false;
      // The oldest entry went meanwhile (trimmed): these would leave a gap.
      if (st.msgs[0] !== top) {
        if (room === current) {
          renderOlder();
          nearTop();
        }
        return;
      }
      const got = r.messages || [];
      // Only what is older than the oldest shown (so not shown already),
      // each seq once, ascending.
      const add = got
        .filter((m) => m.seq < before)
        .sort((a, b) => a.seq - b.seq)
        .filter((m, i, a) => i === 0 || a[i - 1].seq !== m.seq);
      if (got.length < OLDER_PAGE || (add.length && add[0].seq === 1)) o.done = true;
      st.msgs.unshift(...add);
      if (room !== current) return;
      prepend(add);
      renderOlder();
      if (add.length) nearTop(); // a list still too short to scroll
    },
    (e) => {
      if (stale()) return;
      o.loading = false;
      o.error = e.message || e.code || "error";
      if (room === current) renderOlder();
    },
  );
}

// prepend puts entries above the shown ones, keeping the topmost entry in
// view where it was.
function prepend(entries) {
  if (!entries.length) return;
  const top = list.getBoundingClientRect().top;
  let anchor = older.nextElementSibling;
  while (anchor && anchor.nextElementSibling && anchor.getBoundingClientRect().bottom <= top) {
    anchor = anchor.nextElementSibling;
  }
  const y = anchor && anchor.getBoundingClientRect().top;
  quiet();
  older.after(...entries.map(entryItem));
  if (anchor) list.scrollTop += anchor.getBoundingClientRect().top - y;
}

// quiet keeps screen readers from reading out the older messages put into
// the list (a live region for the new ones) by turning it off a moment.
let quietTimer = null;
function quiet() {
  list.setAttribute("aria-live", "off");
  clearTimeout(quietTimer);
  quietTimer = setTimeout(() => list.setAttribute("aria-live", "polite"), 500);
}

$("older-retry").addEventListener("click", () => {
  list.focus(); // the button hides
  loadOlder();
});

// --- read receipts ----------------------------------------------------------

let readTimer = null;
function markRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const st = roomState(current);
    const seq = lastSeq(st);
    if (!client || current === inbox() || document.hidden || !seq) return;
    if (st.sentRead !== seq) {
      st.sentRead = seq;
      client.read(current, seq);
    }
  }, 300);
}
document.addEventListener("visibilitychange", markRead);

// --- events from the client --------------------------------------------------

// takePending finds the unconfirmed message that m (one of ours) is: by
// the ack's seq, or, when the message beats its ack, the oldest one not
// acknowledged with the same text (a connection's sends are stored in the
// order sent).
function takePending(st, m) {
  let i = st.pending.findIndex((p) => !p.failed && p.seq === m.seq);
  if (i < 0) i = st.pending.findIndex((p) => !p.failed && p.seq === undefined && p.text === m.text && m.data === undefined);
  return i < 0 ? null : st.pending.splice(i, 1)[0];
}

function onMessage(m) {
  const st = roomState(m.room);
  // Messages arrive once each, in seq order (the client de-duplicates).
  const p = m.from === me ? takePending(st, m) : null;
  if (p) p.li.remove();
  append(st, m, m.room);
  const t = st.typing.get(m.from);
  if (t) {
    clearTimeout(t);
    st.typing.delete(m.from);
  }
  if (m.room === current) {
    renderSeen();
    renderTyping();
    markRead();
  } else if (m.from !== me) {
    st.unread++;
    renderRooms();
  }
}

// onReset: the room's history was lost on the server (a new epoch). What
// the page shows stays, under a marker; the new epoch's messages follow.
function onReset(f) {
  const st = roomState(f.room);
  // Acknowledged in the old epoch but not seen back: they were stored, and
  // lost with the rest.
  for (const p of st.pending.filter((p) => p.seq !== undefined)) {
    st.pending.splice(st.pending.indexOf(p), 1);
    p.li.remove();
    append(st, { room: f.room, seq: p.seq, ts: p.ts, from: me, text: p.text }, f.room);
  }
  const last = st.msgs[st.msgs.length - 1];
  if (last && !last.marker) append(st, { marker: "reset", room: f.room }, f.room);
  st.reads.clear();
  st.sentRead = 0;
  // A scrollback request of the old epoch is void; what is above the
  // marker is gone on the server, so nothing older can be loaded for it.
  st.older = newOlder();
  if (f.room === current) {
    renderSeen();
    renderOlder();
  }
}

async function refreshPresence(room) {
  try {
    const p = await client.presence(room);
    const st = roomState(room);
    st.users = new Set(p.users);
    if (room === current) renderOnline();
  } catch (e) {
    /* shown on the next event */
  }
}

function connect(opts) {
  client = new ChatClient({ url: wsURL, ...opts });
  client.addEventListener("state", (e) => showState(e.detail));
  client.addEventListener("welcome", (e) => {
    me = e.detail.user;
    showState({ state: "online" });
  });
  client.addEventListener("message", (e) => onMessage(e.detail));
  client.addEventListener("reset", (e) => onReset(e.detail));
  client.addEventListener("joined", (e) => {
    const r = e.detail.room;
    roomState(r);
    renderRooms();
    if (r !== inbox()) refreshPresence(r);
  });
  client.addEventListener("presence", (e) => {
    const p = e.detail;
    const st = roomState(p.room);
    if (p.online) st.users.add(p.user);
    else st.users.delete(p.user);
    if (p.room === current) renderOnline();
  });
  client.addEventListener("typing", (e) => {
    const t = e.detail;
    const st = roomState(t.room);
    clearTimeout(st.typing.get(t.user));
    st.typing.set(
      t.user,
      setTimeout(() => {
        st.typing.delete(t.user);
        if (t.room === current) renderTyping();
      }, 3000),
    );
    if (t.room === current) renderTyping();
  });
  client.addEventListener("read", (e) => {
    const r = e.detail;
    roomState(r.room).reads.set(r.user, r.seq);
    if (r.room === current) renderSeen();
  });
  client.addEventListener("error", (e) => showError(e.detail && e.detail.message));
  return client.connect();
}

// --- the user's actions ----------------------------------------------------

async function joinRoom(room) {
  showError("");
  try {
    roomState(room);
    await client.join(room, { limit: 50 });
    show(room);
  } catch (e) {
    rooms.delete(room);
    renderRooms();
    showError(`could not join ${room}: ${e.message}`);
  }
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = $("name").value.trim();
  await start({ user: name });
});

async function start(opts) {
  $("login").hidden = true;
  $("chat").hidden = false;
  $("menu").hidden = false;
  try {
    const w = await connect(opts);
    me = w.user;
    roomState(inbox());
    await joinRoom("general");
  } catch (e) {
    showError("could not connect: " + e.message);
  }
  $("text").focus();
}

$("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const room = $("join-room").value.trim();
  if (room) joinRoom(room);
  $("join-room").value = "";
});

$("leave").addEventListener("click", async () => {
  const room = current;
  try {
    await client.leave(room);
  } catch (e) {
    /* left locally either way */
  }
  rooms.delete(room);
  show([...rooms.keys()].find((r) => r !== inbox()) || inbox());
});

// sendText shows the message at once as pending ("sending…"), also while
// the page is reconnecting: the client keeps it and sends it (again, with
// the same key) until it is acknowledged. The ack marks it sent; the
// message coming back takes its place in seq order.
function sendText(room, text) {
  const st = roomState(room);
  const p = { room, text, ts: Date.now() };
  p.li = localItem(p);
  st.pending.push(p);
  if (room === current) {
    list.append(p.li);
    toBottom();
    renderEmpty();
  }
  client.send(room, text).then(
    (ack) => {
      if (!st.pending.includes(p)) return; // seen back already
      p.seq = ack.seq;
      p.ts = ack.ts;
      p.li.classList.remove("pending");
      p.status.textContent = "";
    },
    (e) => {
      p.failed = true;
      p.li.classList.replace("pending", "failed");
      p.status.textContent = "not sent: " + e.message;
      showError("not sent: " + e.message);
    },
  );
}

$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("text");
  const text = input.value;
  if (!text.trim() || !current || current === inbox()) return;
  input.value = "";
  showError("");
  sendText(current, text);
  typingAfterSend();
});

// Typing. The server forwards one typing event per user and room every 2 s
// and drops the others (docs/protocol.md), and the other page shows it for 3 s.
// So the page sends one at most every TYPING_EVERY (a little over 2 s) and,
// when a keystroke falls inside that window, one more as the window closes
// if there is still text in the field, and that one again TYPING_ECHO
// later in case network jitter brought it to the server inside its window
// (the server drops the echo when it forwarded the first): a user who
// sends, types on and pauses is shown typing. The first keystroke after a
// send goes out at once too (the throttle is reset on send); the server
// forwards it when its own window allows.
const TYPING_EVERY = 2100;
const TYPING_ECHO = 500;
const typingAt = new Map(); // room -> when the last typing went out
let typingTrail = null;
let typingReset = false;

function typingAfterSend() {
  clearTimeout(typingTrail);
  typingTrail = null;
  typingReset = true;
}

function sendTyping(room) {
  typingAt.set(room, Date.now());
  client.typing(room);
}

// trailTyping sends a typing event after delay if the user still has text
// in the field of the same room and, with thenEcho, once more TYPING_ECHO
// later.
function trailTyping(room, delay, thenEcho) {
  typingTrail = setTimeout(() => {
    typingTrail = null;
    if (current !== room || !$("text").value.trim()) return;
    if (thenEcho) {
      sendTyping(room);
      trailTyping(room, TYPING_ECHO, false);
    } else {
      client.typing(room);
    }
  }, delay);
}

$("text").addEventListener("input", () => {
  const room = current;
  if (!client || !room || room === inbox() || !$("text").value.trim()) return;
  const since = Date.now() - (typingAt.get(room) || 0);
  if (since >= TYPING_EVERY) {
    clearTimeout(typingTrail);
    typingTrail = null;
    typingReset = false;
    sendTyping(room);
    return;
  }
  if (typingReset) {
    typingReset = false;
    client.typing(room);
  }
  if (!typingTrail) trailTyping(room, TYPING_EVERY - since, true);
});

$("dm-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const to = $("dm-to").value.trim();
  const text = $("dm-text").value;
  if (!to || !text.trim()) return;
  $("dm-text").value = "";
  showError("");
  client.dm(to, text).catch((e) => showError("DM not sent: " + e.message));
});

// A token in the fragment (never sent to the server in the URL's path or
// query by the browser): /#token=JWT.
const frag = new URLSearchParams(location.hash.slice(1));
if (frag.get("token")) start({ token: frag.get("token") });
