// Flask-LiveHelp operator panel.
//
// One socket carries the queue, the colleagues' presence and every chat the
// operator has. Replies wait in an outbox until acknowledged and are sent
// again after a reconnect; the server stores each once.
(() => {
  const $ = (id) => document.getElementById(id);
  const strings = JSON.parse($("lh-strings").textContent);
  const settings = JSON.parse($("lh-settings").textContent);
  const format = (text, values) => text.replace(/%\((\w+)\)s/g, (_, key) => values[key] ?? "");
  const newId = () => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  };
  // Lists are drawn anew on every change, several times a second on a busy
  // shift. The element an operator had reached with the keyboard is found
  // in the new list by its data-key and focused again, or each message in
  // any chat would throw them back to the top of the page.
  const redraw = (list, children) => {
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    list.replaceChildren(...children);
    if (!focused) return;
    const again = [...list.querySelectorAll("[data-key]")].find((node) => node.dataset.key === focused);
    if (again) again.focus();
  };
  const keyed = (node, key) => {
    node.dataset.key = key;
    return node;
  };
  const minutes = new Intl.NumberFormat(settings.lang, { style: "unit", unit: "minute", unitDisplay: "short" });
  const seconds = new Intl.NumberFormat(settings.lang, { style: "unit", unit: "second", unitDisplay: "short" });
  const since = (iso) => {
    if (!iso) return "";
    const secs = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return secs < 60 ? seconds.format(secs) : minutes.format(Math.floor(secs / 60));
  };

  // State.
  let me = null;
  let canTranslate = false;
  let options = { idle_seconds: 120, require_tag: false };
  let canned = [];
  const queue = new Map(); // conversation id -> staff frame, while queued
  const chats = new Map(); // conversation id -> chat (mine, active or just ended)
  const viewing = new Map(); // conversation id -> chat looked at without being mine
  const transfers = new Map(); // transfer id -> offer to me
  let operators = [];
  let departments = [];
  let current = null;
  let accepting = null;
  const outbox = []; // reply frames not yet acknowledged

  const chatFor = (frame) => {
    const id = frame.id;
    let chat = chats.get(id) || viewing.get(id);
    // lastSeq: every message up to it is here and shown; early ones wait in
    // pending until the gap before them is filled.
    // tagging: tag name -> added (true) or removed (false), until the server's
    // list of the chat says so too.
    if (!chat) chat = { id, info: {}, messages: new Map(), pending: new Map(), lastSeq: 0, asked: 0, unread: 0, draft: "", typing: false, tagging: new Map() };
    for (const [key, value] of Object.entries(frame)) if (value !== undefined && key !== "type") chat.info[key] = value;
    return chat;
  };
  const anyChat = (id) => chats.get(id) || viewing.get(id);
  // Ask for what followed the last message shown, unless asked a moment ago
  // and the answer may still be on its way.
  const catchUp = (chat, force) => {
    if (!force && chat.asked && Date.now() - chat.asked < 3000) return;
    chat.asked = ready ? Date.now() : 0;
    send({ type: "sync", conversation: chat.id, after: chat.lastSeq });
  };
  const mine = (chat) => me && chat.info.operator_id === me.id;
  const applySettings = (given) => {
    options = given || options;
    $("lh-tag-required").hidden = !options.require_tag;
  };
  const visitorName = (info) => info.visitor_name || (info.context || {}).name || strings.anonymous;

  // The socket.
  let ws = null;
  let ready = false;
  let backoff = 1000;
  let pinging = 0;
  let unanswered = 0;
  const send = (frame) => { if (ready) ws.send(JSON.stringify(frame)); };
  const banner = (text) => {
    $("lh-connection").textContent = text || "";
    $("lh-connection").hidden = !text;
  };
  const connect = () => {
    ws = new WebSocket(new URL(settings.socket, location.href).href.replace(/^http/, "ws"));
    // A handshake nobody answers (a half-open line) would wait for good.
    const socket = ws;
    const opening = setTimeout(() => socket.readyState === WebSocket.CONNECTING && socket.close(), 10000);
    ws.onopen = () => {
      clearTimeout(opening);
      ready = true;
      backoff = 1000;
      banner(null);
      // The server lets a silent panel go; a line that stops answering is
      // closed here and opened again.
      pinging = setInterval(() => {
        send({ type: "ping" });
        unanswered = setTimeout(() => socket.close(), 10000);
      }, 25000);
    };
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      const handler = handlers[frame.type];
      if (handler) handler(frame);
    };
    ws.onclose = (event) => {
      clearInterval(pinging);
      clearTimeout(unanswered);
      ready = false;
      ws = null;
      showStatus(me && me.status);
      if (event.code === 4401) return location.assign(settings.loginUrl);
      banner(strings.reconnecting);
      setTimeout(connect, backoff + Math.random() * 500);
      backoff = Math.min(backoff * 2, 30000);
    };
  };

  // A message in its turn: kept, counted while unread, shown if its chat is open.
  const shown = (chat, frame) => {
    chat.messages.set(frame.seq, frame);
    if (frame.author === "visitor") {
      chat.info.last_visitor_message_at = frame.at;
      chat.typing = false;
      // Their message is what they were writing: the hint has done its work.
      if (current === chat.id) $("lh-typing").textContent = "";
      if (current !== chat.id || document.hidden) {
        chat.unread += 1;
        if (mine(chat)) alert(visitorName(chat.info), frame.body);
      }
    } else if (frame.author === "operator") {
      chat.info.last_operator_message_at = frame.at;
    }
    if (current === chat.id) appendMessage(frame);
  };

  // Coming online with customers already waiting rings, as a new one would.
  const cameOnline = (was, now) => {
    if (was === "online" || now !== "online" || !queue.size) return;
    const first = [...queue.values()].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at))[0];
    alert(strings.newRequest, visitorName(first) + ": " + (first.preview || ""));
  };

  const handlers = {
    hello(frame) {
      const was = me && me.status;
      me = frame.operator;
      canTranslate = Boolean(frame.translate);
      $("lh-translate-draft").hidden = !canTranslate;
      applySettings(frame.settings);
      canned = frame.canned || [];
      departments = frame.departments || [];
      showStatus(me.status);
      $("lh-known-tags").replaceChildren(...(frame.tags || []).map((name) => Object.assign(el("option"), { value: name })));
      queue.clear();
      frame.queue.forEach((c) => queue.set(c.id, c));
      // Ended chats stay listed only until the next hello; the one open now
      // stays, and asks how it is, as one that ended meanwhile may have.
      const active = new Set(frame.active.map((info) => info.id));
      for (const id of [...chats.keys()]) {
        if (active.has(id)) continue;
        if (id === current) catchUp(chats.get(id), true);
        else chats.delete(id);
      }
      for (const info of frame.active) {
        const chat = chatFor(info);
        chats.set(chat.id, chat);
        // Catch up on what was said while we were away.
        catchUp(chat, true);
      }
      transfers.clear();
      (frame.transfers || []).forEach((offer) => transfers.set(offer.id, offer));
      if (current && viewing.has(current)) catchUp(anyChat(current), true);
      colleagues(frame.operators);
      outbox.forEach(send);
      // An Accept sent on a line that broke may never have arrived: while
      // the chat still waits, it is asked for again; taken meanwhile, the
      // click is over.
      if (accepting !== null && queue.has(accepting)) send({ type: "accept", conversation: accepting });
      else accepting = null;
      render();
      cameOnline(was, me.status);
    },
    queued(frame) {
      queue.set(frame.id, frame);
      alert(strings.newRequest, visitorName(frame) + ": " + (frame.preview || ""));
      render();
    },
    routed(frame) {
      queue.set(frame.id, frame);
      render();
    },
    accepted(frame) {
      queue.delete(frame.id);
      if (anyChat(frame.id)) chatFor(frame);
      if (frame.operator_id !== (me && me.id)) viewing.delete(frame.id);
      if (current === frame.id && !anyChat(frame.id)) {
        // The chat being read went to a colleague: say so, not just vanish.
        closeChat();
        toast(strings.taken);
      }
      render();
    },
    assigned(frame) {
      queue.delete(frame.id);
      transfers.forEach((offer, id) => { if (offer.conversation === frame.id) transfers.delete(id); });
      // The chat as it was viewed while queued, messages and draft with it:
      // a new one would count what the operator already read as unread.
      const chat = chatFor(frame);
      viewing.delete(frame.id);
      chats.set(chat.id, chat);
      if (accepting === chat.id || current === chat.id) {
        accepting = null;
        // Focus goes to the reply field (select does it): the tag prompt is
        // open beside it (seed 001), but what the operator types first is
        // the answer, never a tag.
        select(chat.id); // which syncs
      } else {
        catchUp(chat, true);
      }
      render();
    },
    unassigned(frame) {
      chats.delete(frame.id);
      if (current === frame.id) closeChat();
      render();
    },
    transferred(frame) {
      if (anyChat(frame.id)) chatFor(frame);
      render();
    },
    ended(frame) {
      queue.delete(frame.id);
      if (anyChat(frame.id)) chatFor(frame);
      render();
    },
    conversation(frame) {
      if (anyChat(frame.id)) chatFor(frame);
      render();
    },
    message(frame) {
      const chat = anyChat(frame.conversation);
      if (!chat || frame.seq <= chat.lastSeq) return;
      chat.pending.set(frame.seq, frame);
      // Shown in their order only: a gap is asked for, never skipped.
      while (chat.pending.has(chat.lastSeq + 1)) {
        const next = chat.pending.get(chat.lastSeq + 1);
        chat.pending.delete(next.seq);
        chat.lastSeq = next.seq;
        shown(chat, next);
      }
      if (chat.pending.size) catchUp(chat);
      render();
    },
    synced(frame) {
      const chat = anyChat(frame.conversation);
      if (!chat) return;
      chat.asked = 0;
      // The backlog ended short of what the server has: ask again.
      if (chat.pending.size || chat.lastSeq < frame.last) catchUp(chat);
    },
    ack(frame) {
      const index = outbox.findIndex((item) => item.id === frame.id);
      if (index >= 0) outbox.splice(index, 1);
    },
    typing(frame) {
      const chat = anyChat(frame.conversation);
      if (!chat || frame.author !== "visitor") return;
      chat.typing = frame.state;
      if (current === chat.id) $("lh-typing").textContent = frame.state ? strings.typing : "";
    },
    presence(frame) { colleagues(frame.operators); },
    // An admin changed what the panel goes by: applied at once, no reload.
    settings(frame) {
      applySettings(frame.settings);
      render();
    },
    status(frame) {
      // Opening the socket publishes the status before its hello is sent.
      const was = me && me.status;
      if (me) me.status = frame.chosen;
      showStatus(frame.chosen);
      if (me) cameOnline(was, frame.chosen);
    },
    transfer(frame) {
      if (me && frame.from === me.name && !frame.to_operator_id) return;
      transfers.set(frame.id, frame);
      alert(strings.newTransfer, format(strings.transferFrom, { name: frame.from, visitor: frame.visitor_name || strings.anonymous }));
      render();
    },
    "transfer-declined"(frame) { toast(format(strings.transferDeclined, { name: frame.by })); },
    "invitation-declined"() { toast(strings.invitationDeclined); },
    visitors(frame) { visitorRows(frame.items); },
    translation(frame) {
      if (frame.conversation !== current) return;
      if (frame.draft != null) {
        $("lh-reply").value = frame.draft;
        $("lh-reply").focus();
        return;
      }
      const said = document.querySelector(`#lh-log [data-seq="${frame.seq}"]`);
      if (!said) return;
      const shown = said.querySelector(".lh-translation") || said.appendChild(el("p", "lh-translation"));
      shown.textContent = frame.text;
    },
    notice(frame) { toast(frame.message); },
    pong() { clearTimeout(unanswered); },
    hub(frame) {
      if (frame.state === "down") banner(strings.hubDown);
      else {
        banner(null);
        send({ type: "hello" });
      }
    },
    error(frame) {
      const index = outbox.findIndex((item) => item.id === frame.ref);
      if (index >= 0) outbox.splice(index, 1);
      if (frame.ref === "tags") {
        // A refused change shows as it is stored.
        chats.forEach((chat) => chat.tagging.clear());
        viewing.forEach((chat) => chat.tagging.clear());
        renderChat();
      }
      if (frame.code === "taken" || frame.code === "full") {
        // A chat someone else took is no longer on offer; one refused for
        // want of room still is, for when a chat has ended.
        const gone = frame.code === "taken" ? accepting || current : null;
        transfers.forEach((offer, id) => { if (offer.conversation === gone) transfers.delete(id); });
        accepting = null;
        render();
      }
      toast(frame.message);
    },
  };

  // Never miss a customer: sound, a desktop notification and a blinking title,
  // also while the panel is a background tab.
  let audio = null;
  const sound = () => {
    try {
      audio = audio || new AudioContext();
      audio.resume();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.6);
    } catch (e) { /* no sound device */ }
  };
  let blink = 0;
  const title = document.title;
  const alert = (heading, text) => {
    sound();
    if (document.hidden || !document.hasFocus()) {
      if (window.Notification && Notification.permission === "granted") {
        const note = new Notification(heading, { body: text, tag: "livehelp" });
        note.onclick = () => { window.focus(); note.close(); };
      }
      if (!blink) {
        blink = setInterval(() => {
          document.title = document.title === title ? "(!) " + heading : title;
        }, 1000);
      }
    }
  };
  const stopBlink = () => {
    clearInterval(blink);
    blink = 0;
    document.title = title;
  };
  window.addEventListener("focus", stopBlink);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) stopBlink(); });
  const askToNotify = () => {
    if (window.Notification && Notification.permission === "default") Notification.requestPermission().then(showNotifyHint);
  };
  const showNotifyHint = () => {
    $("lh-notify-hint").hidden = !(window.Notification && Notification.permission === "default");
  };
  $("lh-notify").addEventListener("click", askToNotify);
  showNotifyHint();

  let toastTimer = 0;
  const toast = (text) => {
    banner(text);
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { if (ready) banner(null); }, 6000);
  };

  // Status.
  const showStatus = (status) => {
    for (const button of document.querySelectorAll("[data-status]")) {
      button.setAttribute("aria-checked", String(button.dataset.status === status));
    }
    // Only clickable while connected, so a click (Accept during a
    // reconnect, say) is never lost.
    for (const button of document.querySelectorAll("[data-status], .lh-chat-actions button")) {
      button.disabled = !ready;
    }
  };
  for (const button of document.querySelectorAll("[data-status]")) {
    button.addEventListener("click", () => {
      // A click is the gesture browsers want before sound and notifications.
      if (!audio) try { audio = new AudioContext(); } catch (e) { /* no sound */ }
      if (button.dataset.status === "online") askToNotify();
      send({ type: "status", state: button.dataset.status });
    });
  }

  const colleagues = (list) => {
    operators = list;
    $("lh-colleagues").replaceChildren(...list.map((o) => {
      const li = el("li", "lh-colleague lh-is-" + o.status);
      li.append(el("span", "lh-dot"), el("span", null, o.name + (me && o.id === me.id ? " " + strings.you : "")), el("small", null, `${o.active_chats}/${o.max_chats}`));
      return li;
    }));
  };

  // Lists.
  const waitingSince = (chat) => {
    // Since the first thing the visitor said that nobody has answered yet;
    // writing again does not put a customer back in line.
    let since = null;
    for (const m of [...chat.messages.values()].sort((a, b) => a.seq - b.seq)) {
      if (m.kind !== "text") continue;
      if (m.author === "visitor") since = since || m.at;
      else if (m.author === "operator") since = null;
    }
    return since;
  };
  const idleSince = (info) => {
    // The operator spoke last and the visitor has said nothing for a while.
    const visitor = Date.parse(info.last_visitor_message_at || 0);
    const operator = Date.parse(info.last_operator_message_at || 0);
    // 0 turns the idle mark off, as the admin's form says.
    if (!options.idle_seconds || operator <= visitor) return null;
    return Date.now() - operator > options.idle_seconds * 1000 ? info.last_operator_message_at : null;
  };
  // Shown idle the moment a chat turns idle, not at the next regular render.
  let idleTimer = 0;
  const renderWhenIdle = (list) => {
    clearTimeout(idleTimer);
    if (!options.idle_seconds) return;
    const turns = list.filter((chat) => chat.info.status === "active" && !idleSince(chat.info))
      .map((chat) => chat.info)
      .filter((info) => Date.parse(info.last_operator_message_at || 0) > Date.parse(info.last_visitor_message_at || 0))
      .map((info) => Date.parse(info.last_operator_message_at) + options.idle_seconds * 1000);
    if (turns.length) idleTimer = setTimeout(render, Math.max(0, Math.min(...turns) - Date.now()) + 100);
  };
  const item = (className, onClick, parts) => {
    const li = el("li");
    const button = el("button", "lh-item " + className);
    button.type = "button";
    button.append(...parts.filter(Boolean));
    button.addEventListener("click", onClick);
    li.append(button);
    return li;
  };
  const render = () => {
    const waiting = [...queue.values()].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
    redraw($("lh-queue"), waiting.map((info) => {
      const routed = info.requested_operator_id;
      // Seed 001: routed to a named operator shows green, for everyone blue "Queued".
      const tag = routed ? el("span", "lh-tag lh-routed", format(strings.routedTo, { name: info.requested_operator })) : el("span", "lh-tag", strings.queued);
      const li = item("lh-queued" + (routed ? " lh-is-routed" : "") + (current === info.id ? " lh-current" : ""), () => view(info), [
        el("strong", null, visitorName(info)), tag, el("small", "lh-preview", info.preview || ""), el("small", "lh-time", format(strings.waitingFor, { time: since(info.created_at) })),
      ]);
      li.firstChild.dataset.conversation = info.id;
      keyed(li.firstChild, "chat:" + info.id);
      return li;
    }));
    if (!waiting.length) $("lh-queue").append(el("li", "lh-none", strings.noQueue));
    $("lh-queue-count").textContent = waiting.length;

    // The customer who has waited longest for an answer comes first.
    const list = [...chats.values()].sort((a, b) => {
      const wa = waitingSince(a), wb = waitingSince(b);
      if (wa && wb) return Date.parse(wa) - Date.parse(wb);
      if (wa || wb) return wa ? -1 : 1;
      return Date.parse(a.info.accepted_at) - Date.parse(b.info.accepted_at);
    });
    redraw($("lh-active"), list.map((chat) => {
      const info = chat.info;
      const ended = info.status !== "active";
      const waitingAt = waitingSince(chat);
      const idleAt = idleSince(info);
      const note = ended ? strings.ended : waitingAt ? format(strings.waitingFor, { time: since(waitingAt) }) : idleAt ? format(strings.idleFor, { time: since(idleAt) }) : "";
      const li = item((ended ? "lh-ended" : idleAt ? "lh-idle" : waitingAt ? "lh-waiting" : "") + (current === chat.id ? " lh-current" : ""), () => select(chat.id), [
        el("strong", null, visitorName(info)), chat.unread ? el("span", "lh-unread", String(chat.unread)) : null, el("small", "lh-time", note),
      ]);
      li.firstChild.dataset.conversation = chat.id;
      keyed(li.firstChild, "chat:" + chat.id);
      if (ended) {
        // Beside the item, not in it: a button inside a button is unreachable.
        const dismissIt = keyed(el("button", "lh-dismiss", "×"), "dismiss:" + chat.id);
        dismissIt.type = "button";
        dismissIt.setAttribute("aria-label", format(strings.dismissChat, { name: visitorName(info) }));
        dismissIt.title = dismissIt.getAttribute("aria-label");
        dismissIt.addEventListener("click", () => dismiss(chat.id));
        li.classList.add("lh-has-dismiss");
        li.append(dismissIt);
      }
      return li;
    }));
    if (!list.length) $("lh-active").append(el("li", "lh-none", strings.noActive));
    renderWhenIdle(list);
    $("lh-active-count").textContent = list.filter((c) => c.info.status === "active").length;

    $("lh-transfers-box").hidden = !transfers.size;
    redraw($("lh-transfers"), [...transfers.values()].map((offer) => {
      const li = el("li", "lh-offer");
      li.append(el("p", null, format(strings.transferFrom, { name: offer.from, visitor: offer.visitor_name || strings.anonymous })));
      if (offer.note) li.append(el("p", "lh-note", format(strings.note, { note: offer.note })));
      const take = keyed(el("button", "lh-button lh-primary", strings.takeIt), "take:" + offer.id);
      take.type = "button";
      take.addEventListener("click", () => {
        // The offer goes when the chat is ours (assigned), not before: the
        // server may refuse it while we have no room.
        accepting = offer.conversation;
        send({ type: "transfer-answer", transfer: offer.id, accept: true });
      });
      const no = keyed(el("button", "lh-button", strings.decline), "decline:" + offer.id);
      no.type = "button";
      no.addEventListener("click", () => {
        transfers.delete(offer.id);
        send({ type: "transfer-answer", transfer: offer.id, accept: false });
        render();
      });
      li.append(take, no);
      return li;
    }));
    renderChat();
  };

  // The chat in the middle.
  const view = (info) => {
    const chat = chatFor(info);
    if (!chats.has(chat.id)) viewing.set(chat.id, chat);
    select(chat.id);
  };
  const closeChat = () => {
    current = null;
    $("lh-chat").hidden = true;
    $("lh-empty").hidden = false;
  };
  // An ended chat leaves the list when the operator is done with it.
  const dismiss = (id) => {
    const chat = chats.get(id);
    if (!chat || chat.info.status === "active") return;
    chats.delete(id);
    if (current === id) closeChat();
    render();
  };
  const select = (id) => {
    stopTyping();
    const previous = anyChat(current);
    if (previous) previous.draft = $("lh-reply").value;
    current = id;
    const chat = anyChat(id);
    chat.unread = 0;
    $("lh-empty").hidden = true;
    $("lh-visitors").hidden = true;
    $("lh-chat").hidden = false;
    $("lh-log").replaceChildren();
    [...chat.messages.values()].sort((a, b) => a.seq - b.seq).forEach(appendMessage);
    toEnd($("lh-log"));
    $("lh-reply").value = chat.draft;
    $("lh-typing").textContent = chat.typing ? strings.typing : "";
    catchUp(chat, true);
    render();
    if (mine(chat)) $("lh-reply").focus();
  };
  const fact = (list, label, value, href, note) => {
    if (!value) return;
    list.append(el("dt", null, label));
    const dd = el("dd");
    if (href) {
      const link = keyed(el("a", null, value), "fact:" + label);
      link.href = href;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      dd.append(link);
    } else {
      // Isolated: a name that turns text around turns nothing after it.
      dd.append(el("bdi", null, value));
    }
    if (note) dd.append(" ", note);
    list.append(dd);
  };
  // A name or e-mail the shop vouches for, or one the customer typed.
  const vouched = (info, key) => (info.verified || {})[key] ? el("small", "lh-verified", strings.verified) : el("small", "lh-typed", strings.typed);
  const safeUrl = (url) => (typeof url === "string" && /^https?:\/\//i.test(url) ? url : null);
  const renderChat = () => {
    const chat = anyChat(current);
    if (!chat) return;
    const info = chat.info;
    const context = info.context || {};
    $("lh-chat-title").textContent = visitorName(info);
    $("lh-chat-sub").textContent = [info.visitor_email || strings.noEmail, info.page_url].filter(Boolean).join(" · ");
    const open = info.status === "active" && mine(chat);
    $("lh-accept").hidden = info.status !== "queued";
    $("lh-end").hidden = !(open || (info.status === "queued" && me && me.role !== "operator"));
    $("lh-dismiss").hidden = !(chats.has(chat.id) && info.status !== "active");
    $("lh-transfer").hidden = !open;
    $("lh-push").hidden = !open;
    $("lh-composer").hidden = !open;
    $("lh-tags").hidden = !(open || mine(chat));
    $("lh-mail-customer").hidden = !info.visitor_email;
    const facts = document.createDocumentFragment();
    fact(facts, strings.name, info.visitor_name || context.name, null, vouched(info, "name"));
    const email = info.visitor_email || context.email;
    fact(facts, strings.email, email || strings.noEmail, null, email && vouched(info, "email"));
    fact(facts, strings.consent, info.visitor_email && (info.email_consent ? strings.yes : strings.no));
    fact(facts, strings.customerNumber, context.customer_id);
    fact(facts, strings.orders, safeUrl(context.orders_url) && strings.orders, safeUrl(context.orders_url));
    fact(facts, strings.page, info.page_url, safeUrl(info.page_url));
    const department = departments.find((d) => d.id === info.department_id);
    fact(facts, strings.department, department && department.name);
    redraw($("lh-facts"), [facts]);
    const cart = Array.isArray(context.cart) ? context.cart : [];
    $("lh-cart-box").hidden = !cart.length;
    $("lh-cart").replaceChildren(...cart.map((line) => el("li", null, `${line.quantity || 1} × ${line.name || ""}${line.price ? " · " + line.price : ""}`)));
    redraw($("lh-tag-list"), tagsOf(chat).map((name) => {
      const li = el("li", "lh-chip", name);
      const remove = keyed(el("button", "lh-chip-remove", "×"), "tag:" + name);
      remove.type = "button";
      remove.setAttribute("aria-label", format(strings.removeTag, { name }));
      remove.addEventListener("click", () => tag(chat, name, false));
      li.append(remove);
      return li;
    }));
  };
  const eventText = (m) => {
    const data = m.data || {};
    if (m.body === "accepted") return format(strings.accepted, { name: data.operator });
    if (m.body === "transferred") return format(strings.transferred, { name: data.operator });
    if (m.body === "transfer-offered") return format(strings.transferOffered, { operator: data.operator, to: data.to }) + (data.note ? " " + format(strings.note, { note: data.note }) : "");
    if (m.body === "pushed") return format(strings.pushed, { operator: data.operator, url: data.url });
    if (m.body === "returned") return strings.returned;
    // Before "inactive" existed, a quiet chat closed was a "timeout" too.
    if (m.body === "ended" && data.by === "inactive") return strings.closedQuiet;
    if (m.body === "ended") return data.by === "timeout" ? (anyChat(m.conversation).info.accepted_at ? strings.closedQuiet : strings.timedOut) : strings.ended;
    return m.body;
  };
  // The log follows new lines only for an operator at its end: one who
  // scrolled back to read stays where they are, until they answer.
  const atEnd = (log) => log.scrollHeight - log.scrollTop - log.clientHeight < 32;
  const toEnd = (log) => { log.scrollTop = log.scrollHeight; };
  const appendMessage = (m) => {
    const log = $("lh-log");
    const follow = atEnd(log);
    let li;
    if (m.kind === "event") {
      li = el("li", "lh-event", eventText(m));
    } else {
      li = el("li", "lh-said lh-from-" + m.author + (m.via === "email" ? " lh-by-email" : ""));
      const time = new Date(m.at).toLocaleTimeString(settings.lang, { hour: "2-digit", minute: "2-digit" });
      li.append(el("strong", null, m.author === "visitor" ? visitorName(anyChat(m.conversation).info) : m.name || ""), el("time", null, time), el("p", null, m.body));
      if (canTranslate && m.author === "visitor") {
        const translate = el("button", "lh-link lh-translate", strings.translate);
        translate.type = "button";
        translate.addEventListener("click", () => send({ type: "translate", conversation: m.conversation, seq: m.seq }));
        li.append(translate);
      }
    }
    li.dataset.seq = m.seq;
    const after = [...log.children].find((other) => Number(other.dataset.seq) > m.seq);
    log.insertBefore(li, after || null);
    if (follow) toEnd(log);
  };

  // Actions on the chat.
  $("lh-accept").addEventListener("click", () => {
    if (!current) return;
    accepting = current;
    send({ type: "accept", conversation: current });
  });
  $("lh-end").addEventListener("click", () => send({ type: "end", conversation: current }));
  $("lh-dismiss").addEventListener("click", () => dismiss(current));
  $("lh-mail-customer").addEventListener("click", () => send({ type: "transcript", conversation: current, to: "customer" }));
  $("lh-translate-draft").addEventListener("click", () => {
    const text = $("lh-reply").value.trim();
    if (text) send({ type: "translate", conversation: current, text });
  });
  $("lh-mail-me").addEventListener("click", () => send({ type: "transcript", conversation: current, to: "me" }));
  // Tags: shown changed at once, sent as a change (never the whole list, which
  // would drop a tag another frame added a moment before).
  const tagsOf = (chat) => {
    const stored = chat.info.tags || [];
    chat.tagging.forEach((added, name) => { if (stored.includes(name) === added) chat.tagging.delete(name); });
    const added = [...chat.tagging].filter(([name, on]) => on && !stored.includes(name)).map(([name]) => name);
    return [...stored.filter((name) => chat.tagging.get(name) !== false), ...added];
  };
  const tag = (chat, name, on) => {
    chat.tagging.set(name, on);
    send({ type: "tags", conversation: chat.id, [on ? "add" : "remove"]: [name] });
    renderChat();
  };
  $("lh-tags").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("lh-tag-input").value.trim().slice(0, 64);
    const chat = anyChat(current);
    if (name && !tagsOf(chat).includes(name)) tag(chat, name, true);
    $("lh-tag-input").value = "";
  });
  const dialog = (id, onSend) => {
    $(id).addEventListener("close", () => {
      if ($(id).returnValue === "send") onSend();
    });
  };
  $("lh-transfer").addEventListener("click", () => {
    const select = $("lh-transfer-to");
    const colleagues = operators.filter((o) => o.status === "online" && (!me || o.id !== me.id));
    select.replaceChildren(
      ...colleagues.map((o) => Object.assign(el("option", null, `${strings.colleague}: ${o.name}`), { value: "operator:" + o.id })),
      ...departments.map((d) => Object.assign(el("option", null, `${strings.department}: ${d.name}`), { value: "department:" + d.id })),
    );
    $("lh-transfer-note").value = "";
    $("lh-transfer-dialog").showModal();
  });
  dialog("lh-transfer-dialog", () => {
    const [kind, id] = $("lh-transfer-to").value.split(":");
    if (!id) return;
    send({ type: "transfer", conversation: current, [kind]: Number(id), note: $("lh-transfer-note").value.trim() || null });
  });
  $("lh-push").addEventListener("click", () => {
    const page = anyChat(current).info.page_url;
    $("lh-push-url").value = page ? new URL(page).origin + "/" : "";
    $("lh-push-dialog").showModal();
  });
  dialog("lh-push-dialog", () => send({ type: "push", conversation: current, url: $("lh-push-url").value.trim() }));

  // Replies, with canned responses inserted by name: "#generic_OneMoment".
  const reply = () => {
    const body = $("lh-reply").value.trim();
    if (!body || !current) return;
    const frame = { type: "message", conversation: current, id: newId(), body };
    outbox.push(frame);
    send(frame);
    $("lh-reply").value = "";
    anyChat(current).draft = "";
    toEnd($("lh-log"));
    hideCanned();
    stopTyping();
  };
  $("lh-composer").addEventListener("submit", (event) => { event.preventDefault(); reply(); });
  const cannedFor = (chat) => {
    // One response per name: in the customer's language if the shop has it.
    const lang = (chat.info.locale || settings.lang || "").slice(0, 2);
    const byName = new Map();
    for (const response of canned) {
      if (!response.lang || response.lang === lang) {
        if (!byName.has(response.name) || response.lang === lang) byName.set(response.name, response);
      }
    }
    return [...byName.values()];
  };
  const fill = (body) => {
    const chat = anyChat(current);
    // One pass over the template: a customer named "{operator_name}" stays so.
    const values = { visitor_name: visitorName(chat.info), operator_name: me ? me.name : "" };
    return body.replace(/\{(visitor_name|operator_name)\}/g, (_, key) => values[key]);
  };
  let matches = [];
  let chosen = 0;
  const hideCanned = () => {
    matches = [];
    $("lh-canned").hidden = true;
  };
  const cannedWord = () => {
    const box = $("lh-reply");
    const before = box.value.slice(0, box.selectionStart);
    const found = before.match(/(^|\s)#([\w.-]*)$/);
    return found ? { start: before.length - found[2].length - 1, word: found[2] } : null;
  };
  const showCanned = () => {
    const word = cannedWord();
    if (!word || !current) return hideCanned();
    matches = cannedFor(anyChat(current)).filter((r) => r.name.toLowerCase().startsWith(word.word.toLowerCase())).slice(0, 8);
    chosen = 0;
    const list = $("lh-canned");
    list.replaceChildren(...matches.map((r, index) => {
      const li = el("li", index === chosen ? "lh-chosen" : null);
      li.setAttribute("role", "option");
      li.append(el("strong", null, "#" + r.name), el("span", null, fill(r.body)));
      li.addEventListener("mousedown", (event) => { event.preventDefault(); insertCanned(index); });
      return li;
    }));
    list.hidden = !matches.length;
  };
  const insertCanned = (index) => {
    const word = cannedWord();
    const response = matches[index];
    if (!word || !response) return;
    const box = $("lh-reply");
    const text = fill(response.body);
    box.value = box.value.slice(0, word.start) + text + box.value.slice(box.selectionStart);
    box.selectionStart = box.selectionEnd = word.start + text.length;
    hideCanned();
  };
  $("lh-reply").addEventListener("keydown", (event) => {
    if (matches.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        chosen = (chosen + (event.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
        [...$("lh-canned").children].forEach((li, i) => li.classList.toggle("lh-chosen", i === chosen));
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        insertCanned(chosen);
        return;
      }
      if (event.key === "Escape") return hideCanned();
    }
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      reply();
    }
  });

  // Typing: "on" at most every 3 s while typing, "off" after 4 s of quiet.
  let typingSent = 0;
  let typingIn = null;
  let typingQuiet = 0;
  const stopTyping = () => {
    clearTimeout(typingQuiet);
    if (typingIn) send({ type: "typing", conversation: typingIn, state: false });
    typingSent = 0;
    typingIn = null;
  };
  $("lh-reply").addEventListener("input", () => {
    showCanned();
    if (!current || !mine(anyChat(current))) return;
    if (typingIn !== current) stopTyping();
    if (Date.now() - typingSent > 3000) {
      typingSent = Date.now();
      typingIn = current;
      send({ type: "typing", conversation: current, state: true });
    }
    clearTimeout(typingQuiet);
    typingQuiet = setTimeout(stopTyping, 4000);
  });

  // Alt+Up / Alt+Down move between chats.
  document.addEventListener("keydown", (event) => {
    if (!event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
    const ids = [...document.querySelectorAll("#lh-active [data-conversation]")].map((b) => Number(b.dataset.conversation));
    if (!ids.length) return;
    const index = ids.indexOf(current);
    const next = ids[(index + (event.key === "ArrowDown" ? 1 : ids.length - 1)) % ids.length];
    event.preventDefault();
    select(next);
  });

  // Alt+A, Alt+E and Alt+T press Accept, End chat and Transfer when the chat
  // shown has them. Only with Alt alone, so they work from the reply field
  // and never take a letter typed there, nor AltGr (Ctrl+Alt: € and @ on
  // many keyboards). By the key's place, not its letter: Alt+A types "å" on
  // a Mac.
  const shortcuts = { KeyA: "lh-accept", KeyE: "lh-end", KeyT: "lh-transfer" };
  document.addEventListener("keydown", (event) => {
    const id = shortcuts[event.code];
    if (!id || !event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (document.querySelector("dialog[open]") || $("lh-chat").hidden) return;
    event.preventDefault();
    const button = $(id);
    if (!button.hidden && !button.disabled) button.click();
  });

  // Visitors on the site, "in site" first (seed 000).
  let visitorTimer = 0;
  let inviting = null;
  const visitorRows = (items) => {
    $("lh-visitor-count").textContent = items.filter((v) => v.on_site).length;
    if ($("lh-visitors").hidden) return;
    redraw($("lh-visitor-rows"), items.map((v) => {
      const row = el("tr", v.on_site ? "lh-on-site" : "lh-gone");
      const who = el("td", "lh-cell-who");
      who.append(el("strong", null, v.name || strings.anonymous));
      if (v.conversation) who.append(el("span", "lh-tag", strings.chatting));
      if (!v.on_site) who.append(el("small", null, " " + strings.left));
      const page = el("td", "lh-cell-url");
      const link = keyed(el("a", null, v.title || v.page || ""), "page:" + v.id);
      if (safeUrl(v.page)) { link.href = v.page; link.target = "_blank"; link.rel = "noopener noreferrer"; }
      page.append(link);
      const action = el("td");
      if (v.on_site && !v.conversation) {
        const button = keyed(el("button", "lh-button", v.invited ? strings.invited : strings.invite), "invite:" + v.id);
        button.type = "button";
        button.disabled = v.invited;
        button.addEventListener("click", () => { inviting = v.id; $("lh-invite-dialog").showModal(); });
        action.append(button);
      }
      row.append(who, page, el("td", null, String(v.pages)), el("td", null, since(v.since)), el("td", "lh-cell-url", v.referrer || ""), el("td", null, v.lang || ""), action);
      return row;
    }));
  };
  const pollVisitors = () => {
    send({ type: "visitors" });
    visitorTimer = setTimeout(pollVisitors, $("lh-visitors").hidden ? 30000 : 5000);
  };
  $("lh-show-visitors").addEventListener("click", () => {
    $("lh-empty").hidden = true;
    $("lh-chat").hidden = true;
    $("lh-visitors").hidden = false;
    clearTimeout(visitorTimer);
    pollVisitors();
  });
  $("lh-hide-visitors").addEventListener("click", () => {
    $("lh-visitors").hidden = true;
    if (current) $("lh-chat").hidden = false;
    else $("lh-empty").hidden = false;
  });
  dialog("lh-invite-dialog", () => send({ type: "invite", visitor: inviting, message: $("lh-invite-text").value.trim() }));

  setInterval(render, 15000);
  connect();
  setTimeout(pollVisitors, 2000);
})();
