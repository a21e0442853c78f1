/// The page at `/`: join a room with camera and microphone (published
/// over WHIP, two simulcast layers), and see every participant, yourself
/// included, as the SFU relays them (one WHEP session per publisher,
/// following `GET /rooms/{room}`), with live resolution, bitrate and loss.
/// Plain HTML and JavaScript, no build step; `window.demo` holds the state
/// (tests read it).
enum DemoPage {
    static let html = #"""
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
    <title>RingSFU demo</title>
    <style>
      body { font-family: system-ui, sans-serif; margin: 0; background: #111; color: #eee; }
      header { display: flex; gap: .5rem; align-items: center; padding: .75rem 1rem; background: #1c1c1c; flex-wrap: wrap; }
      header h1 { font-size: 1.1rem; margin: 0 1rem 0 0; }
      input, button { font: inherit; padding: .35rem .6rem; border-radius: 4px; border: 1px solid #444; background: #222; color: #eee; }
      button { cursor: pointer; background: #2d5bd7; border-color: #2d5bd7; }
      button:disabled { opacity: .5; cursor: default; }
      #status { margin-left: auto; font-size: .9rem; color: #aaa; }
      #grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: .75rem; padding: 1rem; }
      .tile { position: relative; background: #000; border-radius: 6px; overflow: hidden; aspect-ratio: 16 / 9; }
      .tile video { width: 100%; height: 100%; object-fit: contain; }
      .tile .label { position: absolute; left: .5rem; top: .4rem; font-size: .85rem; background: #0009; padding: .1rem .4rem; border-radius: 3px; }
      .tile .stats { position: absolute; left: .5rem; bottom: .4rem; font: .75rem monospace; background: #0009; padding: .1rem .4rem; border-radius: 3px; }
    </style></head>
    <body>
    <header>
      <h1>RingSFU</h1>
      <label>Room <input id="room" size="14"></label>
      <button id="join">Join</button><button id="watch" title="See the room without publishing">Watch</button><button id="leave" disabled>Leave</button>
      <span id="status">not connected</span>
    </header>
    <div id="grid"></div>
    <script>
    "use strict";
    const params = new URLSearchParams(location.search);
    const token = params.get("token");
    const $ = (id) => document.getElementById(id);
    $("room").value = params.get("room") || "demo";
    // Everything the page knows, for people (the tiles) and for tests.
    const demo = window.demo = { joined: false, publishing: false, publisherId: null, participants: {}, events: [], error: null };
    let local = null, publishPc = null, publishUrl = null, poller = null;
    // The server's STUN/TURN servers (with fresh TURN credentials) come with
    // the room listing; ?relay=1 sends everything through TURN.
    let rtcConfig = {};
    const players = new Map(); // publisher id -> { pc, url, tile, last }

    function headers(type) {
      const h = { "Content-Type": type };
      if (token) h["Authorization"] = "Bearer " + token;
      return h;
    }
    function status(text) { $("status").textContent = text; }
    function fail(e) { demo.error = String(e); status("error: " + e); console.error(e); }

    // POSTs an offer to a WHIP/WHEP endpoint; sets the answer; returns the session URL.
    async function negotiate(pc, endpoint) {
      await pc.setLocalDescription(await pc.createOffer());
      const r = await fetch(endpoint, { method: "POST", headers: headers("application/sdp"), body: pc.localDescription.sdp });
      if (r.status !== 201) throw new Error(endpoint + ": " + r.status + " " + (await r.text()).trim());
      await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
      return new URL(r.headers.get("Location"), location.href).href;
    }

    async function join(publish = true) {
      const room = encodeURIComponent($("room").value.trim());
      $("join").disabled = $("watch").disabled = true;
      try {
        const r = await fetch(`/rooms/${room}`, { headers: token ? { Authorization: "Bearer " + token } : {} });
        if (!r.ok) throw new Error("/rooms: " + r.status + " " + (await r.text()).trim());
        rtcConfig = { iceServers: (await r.json()).iceServers || [] };
        if (params.get("relay") === "1") rtcConfig.iceTransportPolicy = "relay";
        if (publish) await startPublishing(room);
        $("leave").disabled = false;
        demo.joined = true;
        poller = setInterval(() => refresh(room).catch(fail), 1000);
        refresh(room).catch(fail);
        if (!publish) status("watching");
      } catch (e) { fail(e); $("join").disabled = $("watch").disabled = false; }
    }

    async function startPublishing(room) {
      status("opening camera and microphone...");
      local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
      publishPc = new RTCPeerConnection(rtcConfig);
      publishPc.addTransceiver(local.getAudioTracks()[0], { direction: "sendonly" });
      // Two layers: viewers get the full one; the SFU can fall back to the small one.
      publishPc.addTransceiver(local.getVideoTracks()[0], { direction: "sendonly", sendEncodings: [
        { rid: "l", scaleResolutionDownBy: 2, maxBitrate: 250000 }, { rid: "h", maxBitrate: 1200000 }] });
      publishPc.onconnectionstatechange = () => status("publishing: " + publishPc.connectionState);
      publishUrl = await negotiate(publishPc, `/whip/${room}`);
      demo.publisherId = publishUrl.split("/").pop();
      demo.publishing = true;
    }

    // Follows the room: plays new publishers, drops the ones that left.
    async function refresh(room) {
      const r = await fetch(`/rooms/${room}`, { headers: token ? { Authorization: "Bearer " + token } : {} });
      if (!r.ok) throw new Error("/rooms: " + r.status);
      const info = await r.json();
      const present = new Set(info.publishers.map((p) => p.id));
      for (const p of info.publishers) if (!players.has(p.id)) play(room, p.id);
      for (const id of [...players.keys()]) if (!present.has(id)) stop(id);
      for (const [id, player] of players) updateStats(id, player);
      if (publishPc) demo.publishCandidateType = candidateType(await publishPc.getStats());
    }

    // "host", "srflx" or "relay": how the connection reaches the server.
    function candidateType(report) {
      let type = null;
      report.forEach((r) => {
        if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") type = report.get(r.localCandidateId)?.candidateType;
      });
      return type;
    }

    function play(room, id) {
      const pc = new RTCPeerConnection(rtcConfig);
      pc.onconnectionstatechange = () => demo.events.push({ id, event: "connection:" + pc.connectionState });
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.addTransceiver("video", { direction: "recvonly" });
      const tile = document.createElement("div");
      tile.className = "tile";
      tile.innerHTML = `<video autoplay playsinline></video><div class="label"></div><div class="stats">connecting...</div>`;
      const mine = id === demo.publisherId;
      tile.querySelector(".label").textContent = mine ? "you (through the SFU)" : "participant " + id.slice(0, 6);
      const video = tile.querySelector("video");
      video.muted = mine; // no echo of one's own voice
      const stream = new MediaStream();
      video.srcObject = stream;
      pc.ontrack = (e) => {
        stream.addTrack(e.track);
        for (const event of ["mute", "unmute", "ended"]) e.track.addEventListener(event, () => demo.events.push({ id, event: e.track.kind + ":" + event }));
        video.play().catch(() => {});
      };
      $("grid").appendChild(tile);
      const player = { pc, url: null, tile, last: null };
      players.set(id, player);
      demo.participants[id] = { mine, state: "connecting" };
      negotiate(pc, `/whep/${room}?publisher=${id}`).then((url) => { player.url = url; }).catch((e) => {
        demo.participants[id].state = "failed: " + e;
      });
    }

    function stop(id) {
      const player = players.get(id);
      players.delete(id);
      delete demo.participants[id];
      demo.events.push({ id, event: "removed" });
      player.pc.close();
      player.tile.remove();
      if (player.url) fetch(player.url, { method: "DELETE", headers: headers("text/plain") }).catch(() => {});
    }

    async function updateStats(id, player) {
      const s = { mine: id === demo.publisherId, state: player.pc.connectionState };
      const report = await player.pc.getStats();
      s.candidateType = candidateType(report);
      report.forEach((r) => {
        if (r.type !== "inbound-rtp") return;
        if (r.kind === "video") {
          Object.assign(s, { framesDecoded: r.framesDecoded || 0, width: r.frameWidth || 0, height: r.frameHeight || 0,
                             videoBytes: r.bytesReceived, videoPackets: r.packetsReceived, videoLost: r.packetsLost, t: r.timestamp });
        } else if (r.kind === "audio") {
          Object.assign(s, { audioPackets: r.packetsReceived, audioSamples: r.totalSamplesReceived || 0, audioLevel: r.audioLevel || 0 });
        }
      });
      if (player.last && s.t > player.last.t) s.kbps = Math.round((s.videoBytes - player.last.videoBytes) * 8 / (s.t - player.last.t));
      const lost = s.videoLost || 0, got = s.videoPackets || 0;
      s.lossPercent = got + lost > 0 ? +(100 * lost / (got + lost)).toFixed(1) : 0;
      player.last = s;
      if (!players.has(id)) return;
      demo.participants[id] = s;
      player.tile.querySelector(".stats").textContent =
        `${s.width || "?"}x${s.height || "?"}  ${s.kbps ?? "?"} kbps  loss ${s.lossPercent}%  ${s.state}`;
    }

    async function leave() {
      clearInterval(poller);
      for (const id of [...players.keys()]) stop(id);
      if (publishUrl) await fetch(publishUrl, { method: "DELETE", headers: headers("text/plain") }).catch(() => {});
      if (publishPc) publishPc.close();
      if (local) local.getTracks().forEach((t) => t.stop());
      publishPc = publishUrl = local = null;
      Object.assign(demo, { joined: false, publishing: false, publisherId: null });
      $("join").disabled = $("watch").disabled = false;
      $("leave").disabled = true;
      status("left");
    }

    $("join").onclick = () => join(true);
    $("watch").onclick = () => join(false);
    $("leave").onclick = leave;
    // Closing the tab leaves the room at once (the server would notice within seconds anyway).
    window.addEventListener("pagehide", () => {
      for (const url of [publishUrl, ...[...players.values()].map((p) => p.url)]) {
        if (url) fetch(url, { method: "DELETE", keepalive: true, headers: headers("text/plain") }).catch(() => {});
      }
    });
    if (params.get("autojoin") === "1") join(true);
    if (params.get("autowatch") === "1") join(false);
    </script>
    </body></html>
    """#
}
