// The article's app (express + socket.io 4), with `new Server(server)` instead of the
// removed `io.listen(server)`; pingInterval shortened so a short capture shows heartbeats.
const http = require("http");
const { Server } = require("socket.io");
const express = require("express");
const app = express();
app.get("/", (req, res) => { res.type("text/plain"); res.status(200).send("Hello, World."); });
const server = http.createServer(app);
const io = new Server(server, { pingInterval: 1000, pingTimeout: 2000 });
io.on("connection", (socket) => {
  const timer = setInterval(() => socket.emit("second", { second: new Date().getSeconds() }), 1000);
  socket.on("client_data", (data) => console.log(data));
  socket.on("with_ack", (data, ack) => ack({ got: data }));
  socket.on("upload", (buf) => socket.emit("uploaded", buf.length, Buffer.from([1, 2, 3])));
  socket.on("disconnect", () => clearInterval(timer));
});
io.of("/admin").on("connection", (socket) => socket.emit("hello", "admin"));
server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening"));
