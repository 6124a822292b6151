// The browser side of the demo: a native WebSocket to this page's own server.
// The article loaded socket.io's client from its own server and jQuery from a CDN; this page
// needs neither, so it works offline in a classroom.
"use strict";

const MAX_CHUNK = 4096;        // UTF-16 units per message: stays far below the server's max_size
const MAX_QUEUED = 1000;       // messages kept while disconnected, sent on reconnect
const secondEl = document.getElementById("second");
const statusEl = document.getElementById("status");
const noticeEl = document.getElementById("notice");
const sentEl = document.getElementById("sent");
const text = document.getElementById("text");
const bannerEl = document.getElementById("announce");

let socket = null;
let retryDelay = 500;          // ms; doubles up to 10 s while the server is away
let sent = 0;
const outbox = [];

function setStatus(state, label) {
  statusEl.className = state;
  statusEl.textContent = label;
}

// "ws" next to this page: /ws here, /user/ann/proxy/8001/ws behind Jupyter's proxy;
// wss: when the page came over https:, as a hub's pages do.
function socketUrl() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = url.hash = "";
  return url.href;
}

function connect() {
  socket = new WebSocket(socketUrl());
  setStatus("connecting", "connecting…");
  socket.addEventListener("open", () => {
    retryDelay = 500;
    setStatus("open", "connected");
    noticeEl.textContent = "";
    while (outbox.length) send(outbox.shift());
  });
  socket.addEventListener("message", (e) => {
    let msg;
    try { msg = JSON.parse(e.data); } catch { return; }
    if (msg.event === "second") secondEl.textContent = msg.data.second;   // socket.on('second', ...)
    else if (msg.event === "error") noticeEl.textContent = `server: ${msg.data.message}`;
    else if (msg.event === "announce") {                                    // the teacher's banner
      bannerEl.textContent = msg.data.text;
      bannerEl.hidden = !msg.data.text;
    }
  });
  socket.addEventListener("error", () => {   // no details, by design; "close" follows
    noticeEl.textContent = "connection error";
  });
  socket.addEventListener("close", (e) => {   // a closed WebSocket stays closed: make a new one
    const wait = retryDelay * (0.5 + Math.random());   // ±50%: a class does not retry at once
    retryDelay = Math.min(retryDelay * 2, 10000);
    const why = e.reason ? `code ${e.code}: ${e.reason}` : `code ${e.code}`;
    setStatus("closed", `disconnected (${why}); retrying in ${(wait / 1000).toFixed(1)} s`);
    setTimeout(connect, wait);
  });
}

function send(data) {
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    if (outbox.length < MAX_QUEUED) outbox.push(data);
    else noticeEl.textContent = "disconnected: too much typed to keep; newest input dropped";
    return;
  }
  socket.send(JSON.stringify({ event: "client_data", data }));   // socket.emit('client_data', ...)
  sentEl.textContent = ++sent;
}

function sendText(value) {     // in chunks of whole code points: an emoji cut in two
  let start = 0;                 // would arrive as two lone surrogates, which nothing encodes
  while (start < value.length) {
    let end = Math.min(start + MAX_CHUNK, value.length);
    const last = value.charCodeAt(end - 1);
    if (end < value.length && last >= 0xD800 && last <= 0xDBFF) end--;   // a high surrogate
    send(value.slice(start, end));
    start = end;
  }
}

// One message per typed character, like the article's keypress handler. Enter sends "\n";
// a paste or an input method (e.g. Zhuyin, Cangjie) sends its finished text as one message.
text.addEventListener("beforeinput", (e) => {
  if (e.isComposing) return;                     // wait for compositionend
  if (e.inputType === "insertText" && e.data) sendText(e.data);
  else if (e.inputType === "insertLineBreak" || e.inputType === "insertParagraph") send("\n");
});
text.addEventListener("compositionend", (e) => { if (e.data) sendText(e.data); });
text.addEventListener("paste", (e) => {
  const pasted = (e.clipboardData || window.clipboardData).getData("text");
  if (pasted) sendText(pasted);
});

connect();
