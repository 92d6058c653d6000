// Flask-LiveHelp chat window: runs inside the widget's iframe.
//
// Nothing the customer writes is lost: every message waits in a stored
// outbox until the server acknowledges it, and is sent again after any
// reconnect. The server recognises a resend by its id and stores it once;
// this page shows each stored message once, in sequence-number order.
(() => {
  const $ = (id) => document.getElementById(id);
  const strings = JSON.parse($("lh-strings").textContent);
  const settings = JSON.parse($("lh-settings").textContent);
  const params = new URLSearchParams(location.search);
  const page = params.get("page");
  const pid = params.get("pid");
  const identity = params.get("identity");
  const department = Number(params.get("department")) || null;
  // The customer's time zone, so the times in their mails are their own.
  const timezone = (() => {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || null; } catch (e) { return null; }
  })();
  const KEY = "livehelp.chat";
  // Told only to the shop page that embeds us, never to "*": of the origins
  // the server lets embed the chat, the one this page is on.
  const originOf = (url) => { try { return new URL(url).origin; } catch { return null; } };
  const ancestors = location.ancestorOrigins;
  const parentOrigin = [ancestors && ancestors[0], originOf(page), originOf(document.referrer)]
    .find((origin) => settings.parents.includes(origin)) || settings.parents[0];

  const webPage = (url) => typeof url === "string" && /^https?:\/\//i.test(url);
  const format = (text, values) => text.replace(/%\((\w+)\)s/g, (_, key) => values[key] ?? "");
  const newId = () => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
  const tell = (message) => {
    if (window.parent !== window) window.parent.postMessage({ livehelp: message }, parentOrigin);
  };
  const show = (id, on) => { $(id).hidden = !on; };
  const say = (id, text) => {
    $(id).textContent = text || "";
    show(id, Boolean(text));
  };
  if (settings.color) {
    document.documentElement.style.setProperty("--lh-accent", settings.color);
    document.documentElement.style.setProperty("--lh-accent-text", settings.ink);
  }

  // Stored state: {token, conversation, email, outbox: [frames not yet acknowledged]}.
  let saved;
  try { saved = JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { saved = {}; }
  saved.outbox = saved.outbox || [];
  // The number of the last message the customer had in view. The operator's
  // replies after it are unread: the number on the button, counted again
  // from the conversation on every page of the shop (nothing said while the
  // page changed is missed) until the window opens.
  saved.seen = saved.seen || 0;
  const save = () => {
    try { localStorage.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* storage full or blocked */ }
  };
  let unread = 0;
  const counted = (seq) => {
    if (visible) saved.seen = Math.max(saved.seen, seq);
    else if (seq > saved.seen) tell({ type: "unread", n: ++unread });
  };

  // The messages, in the log region (#lh-log) that screen readers follow.
  const log = $("lh-lines");
  // The log follows new lines only for a reader at its end: one who scrolled
  // back to read stays where they are, until they write.
  const scroller = $("lh-log");
  const atEnd = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 32;
  const toEnd = () => { scroller.scrollTop = scroller.scrollHeight; };
  const shown = new Set();
  // Every message numbered up to lastSeq is here; a fresh page starts from 0
  // and so gets the whole conversation back. One that comes early waits in
  // pending until those before it arrive: a gap is asked for, never skipped.
  let lastSeq = 0;
  const pending = new Map();
  let asked = 0;
  const restart = () => {
    log.replaceChildren();
    shown.clear();
    pending.clear();
    lastSeq = 0;
    saved.seen = 0;
    unread = 0;
  };
  // Shown on the shop's page; the loader says (the window may load hidden).
  let visible = false;
  let widgetState = "online";
  let status = null;
  let operatorName = "";
  let invited = false;

  // A short tone for a new message while the window is hidden. Browsers allow
  // sound only after the visitor has touched the page, which they have.
  let audio = null;
  const ring = () => {
    try {
      audio = audio || new AudioContext();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 660;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.4);
    } catch (e) { /* no sound available */ }
  };

  // Messages.
  const bubble = (author, name, body, extra) => {
    const li = document.createElement("li");
    li.className = "lh-msg lh-from-" + author + (extra ? " " + extra : "");
    const who = document.createElement("span");
    who.className = "lh-who";
    who.textContent = author === "visitor" ? strings.you : (name || strings.operator);
    const text = document.createElement("p");
    text.textContent = body;
    li.append(who, text, document.createElement("small"));
    return li;
  };
  const eventItem = (m) => {
    const data = m.data || {};
    const li = document.createElement("li");
    li.className = "lh-event";
    if (m.body === "accepted") li.textContent = format(strings.accepted, { name: data.operator });
    else if (m.body === "transferred") li.textContent = format(strings.transferred, { name: data.operator });
    else if (m.body === "returned") li.textContent = strings.returned;
    // Timed out before any operator joined: it went to the mailbox.
    else if (m.body === "ended") li.textContent = data.by === "timeout" && !operatorName ? strings.timedOut : strings.ended;
    else if (m.body === "pushed") {
      li.textContent = format(strings.pushed, { name: data.operator }) + " ";
      // A web page is a link; anything else (javascript:, data:) stays text.
      const link = document.createElement(webPage(data.url) ? "a" : "span");
      if (webPage(data.url)) {
        link.href = data.url;
        link.target = "_top";
      }
      link.textContent = data.url;
      li.append(link);
    }
    return li;
  };
  const place = (li, seq) => {
    li.dataset.seq = seq;
    for (const other of log.children) {
      if (!other.dataset.seq || Number(other.dataset.seq) > seq) return log.insertBefore(li, other);
    }
    log.append(li);
  };
  const pendingItem = (id) => log.querySelector(`[data-id="${id}"]`);
  const showPending = (frame) => {
    const li = bubble("visitor", null, frame.body, "lh-pending");
    li.dataset.id = frame.id;
    li.lastChild.textContent = strings.sending;
    log.append(li);
    toEnd();
  };
  const showStored = (m, live) => {
    if (shown.has(m.seq)) return;
    shown.add(m.seq);
    let li = m.id && pendingItem(m.id);
    if (li) {
      li.classList.remove("lh-pending");
      li.removeAttribute("data-id");
      li.lastChild.textContent = strings.delivered;
    } else if (m.kind === "event") {
      li = eventItem(m);
    } else {
      li = bubble(m.author, m.name, m.body);
    }
    const follow = atEnd();
    place(li, m.seq);
    if (follow) toEnd();
    if (m.author === "operator") counted(m.seq);
    if (!live) return;
    if (m.author === "operator") {
      typingShown(false);
      if (!visible || document.hidden) ring();
    }
    // The operator pushed a page of the shop: go there; the chat follows.
    if (m.kind === "event" && m.body === "pushed" && webPage(m.data.url)) tell({ type: "navigate", url: m.data.url });
  };

  // Views.
  const view = (name) => {
    show("lh-prechat", name === "prechat");
    show("lh-offline", name === "offline");
    show("lh-offline-done", name === "offline-done");
    show("lh-talk", name === "talk");
    if (name !== "prechat") show("lh-invitation", false);
  };
  const current = () => ["lh-prechat", "lh-offline", "lh-offline-done", "lh-talk"].find((id) => !$(id).hidden);
  const firstView = () => (saved.conversation || saved.outbox.length ? "talk" : widgetState === "offline" && settings.offline ? "offline" : "prechat");
  const net = (text) => say("lh-net", text);
  // The visitor's last known place in the queue, and the expected wait.
  let queuePlace = {};
  const waitingNotice = (frame) => {
    if (frame.position) queuePlace = frame;
    if (status !== "queued") return say("lh-notice", null);
    let text = widgetState === "busy" ? strings.busyWait : widgetState === "away" ? strings.awayWait : strings.waiting;
    if (queuePlace.position) text += " " + format(strings.position, { position: queuePlace.position });
    if (queuePlace.wait) text += " " + format(strings.expected, { minutes: Math.max(1, Math.round(queuePlace.wait / 60)) });
    say("lh-notice", text);
  };
  const showStatus = (frame) => {
    status = frame.status;
    operatorName = frame.operator || "";
    const open = status === "queued" || status === "active";
    $("lh-operator").textContent = operatorName;
    show("lh-composer", open);
    show("lh-end", open);
    show("lh-new", !open);
    show("lh-transcript", Boolean(saved.email) && status !== "queued");
    show("lh-contact", status === "missed" && !saved.email);
    waitingNotice(frame);
    if (!open) {
      saved.outbox = [];
      tell({ type: "ended" });
    }
    save();
  };

  // The socket.
  let ws = null;
  let ready = false;
  // Until the server says "synced", messages are history being sent again,
  // not news: no sound, and no jumping to a page pushed long ago.
  let backlog = true;
  let backoff = 1000;
  let pingTimer = 0;
  let pongTimer = 0;
  const wanted = () => Boolean(saved.conversation || saved.outbox.length);
  const send = (frame) => ready && ws.send(JSON.stringify(frame));
  // Who we are and what we have seen; the server answers with what we missed.
  const hello = () => {
    backlog = true;
    ws.send(JSON.stringify({ type: "hello", token: saved.token, conversation: saved.conversation, after: lastSeq, page, pid, identity, timezone }));
  };
  const connect = () => {
    if (ws || !wanted()) return;
    net(navigator.onLine ? strings.connecting : strings.offlineNet);
    ws = new WebSocket(new URL(settings.socket, location.href).href.replace(/^http/, "ws"));
    // A handshake nobody answers (a half-open line) would wait for good.
    const socket = ws;
    const opening = setTimeout(() => socket.readyState === WebSocket.CONNECTING && socket.close(), 10000);
    ws.onopen = () => {
      clearTimeout(opening);
      hello();
      pingTimer = setInterval(() => {
        send({ type: "ping" });
        // No answer in time: the line is dead even if the browser has not noticed.
        pongTimer = setTimeout(() => ws && ws.close(), 10000);
      }, 25000);
    };
    ws.onmessage = (event) => receive(JSON.parse(event.data));
    ws.onclose = () => {
      ws = null;
      ready = false;
      clearInterval(pingTimer);
      clearTimeout(pongTimer);
      if (!wanted()) return net(null);
      net(navigator.onLine ? strings.connecting : strings.offlineNet);
      setTimeout(connect, backoff + Math.random() * 500);
      backoff = Math.min(backoff * 2, 30000);
    };
  };
  // A message, or the number of one only staff read, in its turn.
  const numbered = (frame) => {
    if (frame.seq <= lastSeq) return;
    pending.set(frame.seq, frame);
    while (pending.has(lastSeq + 1)) {
      const next = pending.get(lastSeq + 1);
      pending.delete(next.seq);
      lastSeq = next.seq;
      if (next.type === "message") showStored(next, !backlog);
    }
    if (pending.size) askAgain();
  };
  // Ask for what followed lastSeq, unless asked a moment ago.
  const askAgain = () => {
    if (asked && Date.now() - asked < 3000) return;
    asked = ready ? Date.now() : 0;
    send({ type: "sync", after: lastSeq });
  };
  const acknowledged = (id) => {
    saved.outbox = saved.outbox.filter((frame) => frame.id !== id);
    save();
  };
  const receive = (frame) => {
    switch (frame.type) {
      case "welcome":
        if (frame.token) saved.token = frame.token;
        // The shop knows the customer's address (signed in) and the chat has
        // it, though the form did not ask: the transcript can go there.
        if (frame.email && !saved.email) saved.email = frame.email;
        ready = true;
        backoff = 1000;
        net(null);
        save();
        if (!held) saved.outbox.forEach(send);
        break;
      case "conversation":
        // Another chat than the one shown (a new one): its numbers start over.
        if (saved.conversation && saved.conversation !== frame.id) restart();
        saved.conversation = frame.id;
        view("talk");
        showStatus(frame);
        break;
      case "queue":
        waitingNotice(frame);
        break;
      case "message":
      case "hidden":
        numbered(frame);
        save();
        break;
      case "synced":
        backlog = false;
        asked = 0;
        if (pending.size || lastSeq < frame.last) askAgain();
        break;
      case "ack": {
        acknowledged(frame.id);
        const li = pendingItem(frame.id);
        if (li) li.lastChild.textContent = strings.delivered;
        break;
      }
      case "typing":
        if (frame.author === "operator") typingShown(frame.state);
        break;
      case "transcript":
        say("lh-notice", format(strings.transcriptSent, { email: frame.to }));
        break;
      case "contact":
        saved.email = frame.email;
        save();
        show("lh-contact", false);
        say("lh-notice", format(strings.contactSaved, { email: frame.email }));
        break;
      case "hub":
        // The server lost its other processes for a while: catch up.
        if (frame.state === "up") hello();
        break;
      case "error":
        refused(frame);
        break;
      case "pong":
        clearTimeout(pongTimer);
        break;
    }
  };
  // Asked to slow down: nothing more goes out until the wait is over, then
  // the whole outbox, in the order the customer wrote it.
  let held = 0;
  const resume = () => {
    held = 0;
    saved.outbox.forEach(send);
  };
  const refused = (frame) => {
    const li = frame.ref && pendingItem(frame.ref);
    if (frame.code === "too-fast") {
      if (li) li.lastChild.textContent = frame.message;
      clearTimeout(held);
      held = setTimeout(resume, Math.max(1, frame.retry || 5) * 1000);
      return;
    }
    if (li) {
      acknowledged(frame.ref);
      li.classList.add("lh-failed");
      li.lastChild.textContent = frame.message;
      if (!saved.conversation) {
        // The chat never started (a required field, say): back to the form.
        li.remove();
        view("prechat");
        say("lh-prechat-error", frame.message);
      }
    } else {
      say("lh-notice", frame.message);
    }
  };

  let typingTimer = 0;
  const typingShown = (on) => {
    clearTimeout(typingTimer);
    $("lh-typing").textContent = on ? format(strings.typing, { name: operatorName || strings.operator }) : "";
    if (on) typingTimer = setTimeout(() => typingShown(false), 6000);
  };
  let typingSent = 0;
  let typingStop = 0;
  $("lh-input").addEventListener("input", () => {
    const now = Date.now();
    if (now - typingSent > 3000) {
      typingSent = now;
      send({ type: "typing", state: true });
    }
    clearTimeout(typingStop);
    typingStop = setTimeout(() => { typingSent = 0; send({ type: "typing", state: false }); }, 4000);
  });

  const queue = (frame) => {
    saved.outbox.push(frame);
    save();
    showPending(frame);
    if (held) return;
    if (ready) send(frame);
    else connect();
  };

  // Before the chat: the question, and help pages that may answer it.
  const value = (id) => ($(id) ? $(id).value.trim() : "");
  let suggestTimer = 0;
  $("lh-question").addEventListener("input", () => {
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(suggest, 400);
  });
  const suggest = () => {
    const question = value("lh-question");
    if (question.length < 3 || !settings.suggest) return show("lh-suggestions", false);
    const url = new URL(settings.suggest, location.href);
    url.searchParams.set("q", question);
    fetch(url, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((data) => {
        const list = $("lh-suggestion-list");
        list.replaceChildren(...data.articles.map((article) => {
          const li = document.createElement("li");
          const link = document.createElement(article.url ? "a" : "strong");
          link.textContent = article.title;
          if (article.url) {
            link.href = article.url;
            link.target = "_blank";
            link.rel = "noopener";
          }
          const excerpt = document.createElement("p");
          excerpt.textContent = article.excerpt;
          li.append(link, excerpt);
          return li;
        }));
        show("lh-suggestions", data.articles.length > 0);
      }, () => show("lh-suggestions", false));
  };
  // A quick customer may have typed before this script ran.
  if (value("lh-question")) suggest();
  $("lh-answered").addEventListener("click", () => {
    $("lh-question").value = "";
    show("lh-suggestions", false);
    say("lh-prechat-error", null);
    $("lh-prechat").reset();
    tell({ type: "close" });
  });

  const required = (ids) => {
    for (const id of ids) {
      const field = $(id);
      if (field && !field.checkValidity()) {
        field.focus();
        return field.validationMessage;
      }
    }
    return null;
  };
  $("lh-prechat").addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = required(["lh-question", "lh-name", "lh-email"]);
    if (problem) return say("lh-prechat-error", problem);
    say("lh-prechat-error", null);
    restart();
    saved.email = value("lh-email") || null;
    view("talk");
    queue({
      type: "start",
      id: newId(),
      body: value("lh-question"),
      name: value("lh-name") || null,
      email: saved.email,
      consent: Boolean($("lh-consent") && $("lh-consent").checked),
      department,
      invited,
    });
    $("lh-question").value = "";
    show("lh-suggestions", false);
    $("lh-input").focus();
  });

  // The offline form: sent over HTTP, so it works without an open socket.
  let offlineId = null;
  $("lh-offline").addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = required(["lh-offline-body", "lh-offline-email"]);
    if (problem) return say("lh-offline-error", problem);
    // One id per message, kept across retries, so a resend is stored once.
    offlineId = offlineId || newId();
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (settings.csrf) headers["X-CSRFToken"] = settings.csrf;
    if (saved.token) headers["X-LiveHelp-Token"] = saved.token;
    const email = value("lh-offline-email") || null;
    const body = {
      id: offlineId,
      body: value("lh-offline-body"),
      name: value("lh-offline-name") || null,
      email,
      consent: $("lh-offline-consent").checked,
      page,
      department,
      timezone,
      website: $("lh-website").value,
    };
    say("lh-offline-error", null);
    fetch(settings.offline, { method: "POST", headers, credentials: "same-origin", body: JSON.stringify(body) })
      .then((r) => r.json().then((data) => ({ ok: r.ok, data })))
      .then(({ ok, data }) => {
        if (!ok) return say("lh-offline-error", data.message || strings.error);
        offlineId = null;
        $("lh-offline").reset();
        view("offline-done");
        // Only what will happen: an answer by mail needs an address mail goes to.
        const mailed = data.mailed;
        $("lh-offline-done-text").textContent = mailed
          ? strings.offlineSent + " " + format(strings.offlineCopy, { email: mailed })
          : email ? strings.offlineKept : strings.offlineNoAddress;
      }, () => say("lh-offline-error", strings.error));
  });

  const sendTyped = () => {
    const input = $("lh-input");
    const body = input.value.trim();
    if (!body) return;
    input.value = "";
    // Sent: the operator must not go on reading "writing..." until a timer.
    clearTimeout(typingStop);
    if (typingSent) send({ type: "typing", state: false });
    typingSent = 0;
    queue({ type: "message", id: newId(), body });
  };
  $("lh-composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendTyped();
  });
  $("lh-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      sendTyped();
    }
  });
  $("lh-contact").addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = required(["lh-contact-email"]);
    if (problem) return say("lh-notice", problem);
    send({ type: "contact", email: value("lh-contact-email") });
  });
  $("lh-end").addEventListener("click", () => send({ type: "end" }));
  $("lh-transcript").addEventListener("click", () => send({ type: "transcript" }));
  $("lh-new").addEventListener("click", () => {
    saved.conversation = null;
    save();
    if (ws) ws.close();
    say("lh-notice", null);
    view(firstView());
    (current() === "lh-offline" ? $("lh-offline-body") : $("lh-question")).focus();
  });
  // Closed, a chat that goes on comes back minimised on the next page. Until
  // this page hears from the server, one goes on if the last page left one:
  // a customer quicker than a slow network must not lose it.
  const goesOn = () => (status ? status === "queued" || status === "active" : wanted());
  $("lh-close").addEventListener("click", () => tell({ type: "close", keep: goesOn() }));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") tell({ type: "close", keep: true });
  });

  // An operator's invitation, passed on by the loader.
  let invitationShown = null;
  $("lh-invitation-accept").addEventListener("click", () => {
    invited = true;
    show("lh-invitation", false);
    $("lh-question").focus();
  });
  $("lh-invitation-decline").addEventListener("click", () => {
    show("lh-invitation", false);
    const headers = { "Content-Type": "application/json" };
    if (settings.csrf) headers["X-CSRFToken"] = settings.csrf;
    fetch(settings.decline, { method: "POST", headers, body: JSON.stringify({ pid }), credentials: "same-origin" }).catch(() => {});
    tell({ type: "close" });
  });

  const focusField = () => {
    const where = current();
    const field = where === "lh-offline" ? $("lh-offline-body") : where === "lh-talk" ? $("lh-input") : $("lh-question");
    field.focus();
  };
  const followState = (state) => {
    widgetState = state;
    // Nobody there: the offline form, unless a chat is going on or typed into.
    const idle = !wanted() && !value("lh-question") && !value("lh-offline-body");
    const before = current();
    if (idle && (before === "lh-prechat" || before === "lh-offline")) {
      view(firstView());
      // Opened before the shop's state was known: the customer types in the
      // form they now see, not in the one that went away.
      if (visible && current() !== before) focusField();
    }
    if (status === "queued") waitingNotice({});
  };
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    const message = event.data && event.data.livehelp;
    if (!message) return;
    if (message.state) followState(message.state);
    // Just opened: the customer sees what came while it was closed, and
    // types where they left off.
    if (message.shown && !visible) {
      toEnd();
      focusField();
    }
    visible = Boolean(message.shown);
    if (visible) {
      saved.seen = lastSeq;
      unread = 0;
      save();
    }
    const invitation = message.invitation;
    if (invitation && invitation.message !== invitationShown && !wanted()) {
      invitationShown = invitation.message;
      view("prechat");
      $("lh-invitation-title").textContent = invitation.title;
      $("lh-invitation-text").textContent = invitation.message;
      show("lh-invitation", true);
      $("lh-invitation-accept").focus();
    }
  });
  window.addEventListener("online", () => {
    // Back on the network: a live socket needs no banner; a lost one says
    // it is connecting (connect() does), and without a chat there is nothing to say.
    net(ready || !ws ? null : strings.connecting);
    if (!ws) {
      backoff = 1000;
      connect();
    }
  });
  window.addEventListener("offline", () => net(strings.offlineNet));
  // Offline already while this script was on its way: no event will say so.
  if (!navigator.onLine) net(strings.offlineNet);

  // Carry on where the customer left off: the conversation and anything unsent.
  saved.outbox.forEach(showPending);
  view(firstView());
  connect();
  // The buttons are ours from here on; a click before (the page still loading
  // this script) would have posted a form to nowhere, question and all, or
  // done nothing at all.
  for (const button of document.querySelectorAll("button")) button.disabled = false;
  tell({ type: "ready" });
})();
