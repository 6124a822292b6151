const { io } = require("socket.io-client");
const url = `http://127.0.0.1:${process.env.PORT}`;
const socket = io(url);
const admin = io(`${url}/admin`);
let seconds = 0;
socket.on("connect", () => socket.emit("client_data", "a"));
socket.on("second", () => {
  seconds += 1;
  if (seconds === 1) socket.emit("with_ack", "ping?", () => {});
  if (seconds === 2) socket.emit("upload", Buffer.from("bin"));
  if (seconds === 4) { admin.disconnect(); socket.disconnect(); setTimeout(() => process.exit(0), 300); }
});
