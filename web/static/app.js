// The chat page. Everything the user or another user typed goes into the
// page through textContent, never as HTML.
import { ChatClient } from "/client.js";

const $ = (id) => document.getElementById(id);
const wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

let client = null;
let me = "";
let current = ""; // the room shown
const rooms = new Map(); // room -> {msgs: [], unread, users: Set, reads: Map(user -> seq), typing: Map(user -> timer)}
let countdown = null;

function roomState(room) {
  if (!rooms.has(room)) rooms.set(room, { msgs: [], unread: 0, users: new Set(), reads: new Map(), typing: new Map() });
  return rooms.get(room);
}

const inbox = () => "@" + me;
const label = (room) => (room === inbox() ? "Direct messages" : "#" + room);

function showError(text) {
  $("error").textContent = text || "";
}

// --- connection state ---------------------------------------------------

function showState(d) {
  const el = $("state");
  clearInterval(countdown);
  el.className = d.state;
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

// --- rendering ------------------------------------------------------------

function renderRooms() {
  const ul = $("rooms");
  ul.replaceChildren();
  for (const [room, st] of rooms) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.room = room;
    b.textContent = label(room);
    if (room === current) b.setAttribute("aria-current", "true");
    if (st.unread && room !== current) {
      const u = document.createElement("span");
      u.className = "unread";
      u.textContent = String(st.unread);
      b.append(u);
    }
    b.addEventListener("click", () => show(room));
    li.append(b);
    ul.append(li);
  }
}

function fmtTime(ts) {
  const d = new Date(ts);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function msgItem(m) {
  const li = document.createElement("li");
  li.className = "msg";
  li.dataset.seq = String(m.seq);
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

function renderMessages() {
  const st = roomState(current);
  const ol = $("messages");
  ol.replaceChildren(...st.msgs.map(msgItem));
  ol.scrollTop = ol.scrollHeight;
  renderSeen();
  renderTyping();
  renderOnline();
}

function renderSeen() {
  const st = roomState(current);
  const last = st.msgs.length ? st.msgs[st.msgs.length - 1].seq : 0;
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

function show(room) {
  current = room;
  roomState(room).unread = 0;
  $("room-name").textContent = label(room);
  $("leave").hidden = room === inbox();
  $("composer").hidden = room === inbox();
  renderRooms();
  renderMessages();
  markRead();
  if (room !== inbox()) refreshPresence(room);
}

// --- read receipts ----------------------------------------------------------

let readTimer = null;
function markRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const st = roomState(current);
    if (!client || current === inbox() || document.hidden || !st.msgs.length) return;
    const seq = st.msgs[st.msgs.length - 1].seq;
    if (st.sentRead !== seq) {
      st.sentRead = seq;
      client.read(current, seq);
    }
  }, 300);
}
document.addEventListener("visibilitychange", markRead);

// --- events from the client --------------------------------------------------

function onMessage(m) {
  const st = roomState(m.room);
  // Messages arrive once each, in seq order (the client de-duplicates).
  st.msgs.push(m);
  if (st.msgs.length > 500) st.msgs.shift();
  const t = st.typing.get(m.from);
  if (t) {
    clearTimeout(t);
    st.typing.delete(m.from);
  }
  if (m.room === current) {
    const ol = $("messages");
    const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
    ol.append(msgItem(m));
    if (atBottom) ol.scrollTop = ol.scrollHeight;
    renderSeen();
    renderTyping();
    markRead();
  } else if (m.from !== me) {
    st.unread++;
    renderRooms();
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
  client.addEventListener("reset", (e) => {
    // The room's history was lost on the server: start it over.
    const st = roomState(e.detail.room);
    st.msgs = [];
    if (e.detail.room === current) renderMessages();
  });
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

$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("text");
  const text = input.value;
  if (!text.trim() || !current || current === inbox()) return;
  input.value = "";
  showError("");
  // Resolves with the ack, possibly after a reconnect: the client keeps it
  // and re-sends it with the same key until it is acknowledged.
  client.send(current, text).catch((e) => showError("not sent: " + e.message));
});

let lastTyping = 0;
$("text").addEventListener("input", () => {
  if (Date.now() - lastTyping > 2000 && current && current !== inbox()) {
    lastTyping = Date.now();
    client.typing(current);
  }
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
