// The browser side of the socket.io flavour: the article's client.js on the official
// socket.io client, which this page's server serves at /socket.io/socket.io.js (no CDN,
// no jQuery). io() long-polls first, then upgrades to a WebSocket; it reconnects by itself.
"use strict";

const MAX_CHUNK = 4096;        // characters per message, like the plain page
const MAX_QUEUED = 1000;       // emits socket.io keeps while disconnected, sent on reconnect
const secondEl = document.getElementById("second");
const statusEl = document.getElementById("status");
const noticeEl = document.getElementById("notice");
const sentEl = document.getElementById("sent");
const text = document.getElementById("text");

let sent = 0;
const socket = io();           // the article: io.connect()

function setStatus(state, label) {
  statusEl.className = state;
  statusEl.textContent = label;
}

function showTransport() {     // "polling" at first, "websocket" once upgraded
  setStatus("open", `connected (${socket.io.engine.transport.name})`);
}

socket.on("connect", () => {
  noticeEl.textContent = "";
  showTransport();
  socket.io.engine.once("upgrade", showTransport);
});
socket.on("second", (data) => { secondEl.textContent = data.second; });  // as in the article
socket.on("error", (data) => { noticeEl.textContent = `server: ${data.message}`; });
socket.on("disconnect", (reason) => setStatus("closed", `disconnected (${reason}); reconnecting…`));
socket.on("connect_error", (err) => setStatus("closed", `cannot connect (${err.message}); retrying…`));

function send(data) {
  if (!socket.connected && socket.sendBuffer.length >= MAX_QUEUED) {
    noticeEl.textContent = "disconnected: too much typed to keep; newest input dropped";
    return;
  }
  socket.emit("client_data", data);   // kept in socket.sendBuffer while disconnected
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

// One message per typed character, as the article's keypress handler meant. Enter sends
// "\n"; a paste or an input method (e.g. Zhuyin, Cangjie) sends its finished text at once.
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
