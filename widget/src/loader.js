// Flask-LiveHelp loader: the only script a shop page loads before the chat is
// opened. It draws the launcher in a shadow root (the shop's CSS and ours never
// meet), asks for the operators' state now and then (which also tells the
// visitor list that this page is open), and creates the chat iframe on the
// first click or when an operator invites the visitor. Its one global is
// `LiveHelp`. No cookies: the tab's id lives in sessionStorage.
//
// Every byte here is loaded by every page of the shop, so it is written
// small: short names for things used often, and nothing the chat window
// (loaded later, in the iframe) can do instead.
(() => {
  const me = document.currentScript;
  if (!me || window.LiveHelp) return;
  const cfg = JSON.parse(me.dataset.livehelp),
    base = new URL(cfg.base + "/", me.src),
    OPEN = "livehelp.open";
  let local, tab, pid;
  try {
    local = localStorage;
    tab = sessionStorage;
    pid = tab.getItem("livehelp.pid") || crypto.getRandomValues(new Uint32Array(2)).join("");
    tab.setItem("livehelp.pid", pid);
  } catch (e) {
    // Storage blocked: the chat still works, without surviving page changes.
    pid = pid || Date.now();
  }
  const remember = (value) => {
    try { value ? local.setItem(OPEN, value) : local.removeItem(OPEN); } catch (e) { /* blocked */ }
  };

  const host = document.createElement("livehelp-widget"),
    root = host.attachShadow({ mode: "open" });
  // The page's rules cannot reach inside the shadow root; on the host element
  // itself, "all:initial!important" undoes them (a shadow root's important
  // rules beat the page's), and the button and window are fixed on their own.
  const css = ":host{all:initial!important}"
    + "button{all:initial;position:fixed;z-index:2147483000;bottom:16px;right:16px;display:flex;align-items:center;gap:8px;cursor:pointer;font:600 16px system-ui,sans-serif;color:#fff;background:var(--c,#1d6b3a);border-radius:24px;padding:12px 18px;box-shadow:0 4px 16px #0004}"
    + "button:focus-visible{outline:3px solid #f5c518}"
    + "i{width:10px;height:10px;border-radius:50%;background:#fff}"
    + ".busy,.away{background:#8a5a00}.offline{background:#a4262c}"
    + "b{background:#fff;color:#a4262c;border-radius:9px;padding:0 6px;font-size:12px}b:empty{display:none}"
    + "div{display:none;position:fixed;z-index:2147483000;bottom:76px;right:16px;width:min(380px,90vw);height:min(600px,80vh);border-radius:12px;overflow:hidden;box-shadow:0 8px 32px #0005}"
    + ":host(.l) *{left:16px;right:auto}.on{display:block}"
    + "iframe{border:0;width:100%;height:100%}"
    + "@media (max-width:480px){.on{inset:0;width:auto;height:auto;border-radius:0}}";
  // A constructed sheet needs no inline <style>, so no CSP nonce either.
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  root.adoptedStyleSheets = [sheet];

  const make = (tag, parent) => parent.appendChild(document.createElement(tag)),
    panel = make("div", root),
    btn = make("button", root),
    aria = (value) => btn.setAttribute("aria-expanded", value),
    paint = (color) => color && host.style.setProperty("--c", color);
  aria(false);
  make("i", btn);
  const label = make("span", btn),
    badge = make("b", btn);
  if (cfg.position == "left") host.className = "l";
  paint(cfg.color);

  let frame, state, timer, invited, unread = 0;
  const query = (extra) => {
      const params = new URLSearchParams({
        lang: cfg.lang || "", pid: pid, page: location.href.slice(0, 2000),
        title: document.title.slice(0, 200), ref: document.referrer.slice(0, 2000), ...extra,
      });
      if (cfg.department) params.set("department", cfg.department);
      return params;
    },
    post = (message) => frame && frame.contentWindow.postMessage({ livehelp: message }, base.origin),
    show = (data) => {
      state = btn.className = data.state;
      label.textContent = data.label;
      paint(data.color);
      post({ type: "status", state: state });
      const invitation = data.invitation;
      if (invitation && invitation.message != (invited || {}).message) {
        invited = invitation;
        open({ invite: 1 });
        post({ type: "invitation", invitation: invitation });
      }
    },
    poll = (extra) => {
      clearTimeout(timer);
      fetch(new URL("status?" + query(extra), base), { credentials: "omit" })
        .then((r) => r.json())
        .then(show, () => {})
        .finally(() => {
          // A hidden tab asks less often, but still counts as on the site.
          timer = setTimeout(poll, (document.hidden ? 60 : cfg.poll) * 1000);
        });
    },
    setUnread = (n) => { badge.textContent = (unread = n) || ""; },
    load = (extra) => {
      if (frame) return;
      frame = make("iframe", panel);
      frame.title = label.textContent;
      frame.src = new URL("frame?" + query({ identity: cfg.identity || "", ...extra }), base);
    },
    isOpen = () => panel.className,
    open = (extra) => {
      load(extra);
      panel.className = "on";
      aria(true);
      setUnread(0);
      remember("open");
      post({ type: "shown" });
      frame.focus();
    },
    close = (keep) => {
      panel.className = "";
      aria(false);
      // "min" brings the chat back, minimised, on the next page of the shop.
      remember(keep ? "min" : "");
      post({ type: "hidden" });
      btn.focus();
    };
  document.addEventListener("visibilitychange", () => document.hidden || poll());

  btn.onclick = () => (isOpen() ? close(1) : open());
  addEventListener("message", (event) => {
    const message = event.data?.livehelp;
    if (!frame || event.source != frame.contentWindow || !message) return;
    const type = message.type;
    if (type == "close") close(message.keep);
    // The frame was still loading when the state or an invitation came.
    else if (type == "ready") post({ type: isOpen() ? "shown" : "hidden", state: state, invitation: invited });
    else if (type == "unread" && !isOpen()) setUnread(unread + 1);
    else if (type == "ended") remember("");
    else if (type == "decline") poll({ decline: 1 });
    else if (type == "navigate") {
      // Pushed by the operator; only pages of this shop, as the server checked.
      const url = new URL(message.url, location.href);
      if (url.origin == location.origin) location.assign(url);
    }
  });
  addEventListener("keydown", (event) => event.key == "Escape" && isOpen() && close(1));

  const start = () => {
    document.body.append(host);
    poll();
    const restored = local && local.getItem(OPEN);
    if (restored == "open") open();
    // Minimised: load the chat hidden, so the conversation goes on and can ring.
    else if (restored == "min") load();
  };
  window.LiveHelp = { open: () => open(), close: () => close(), get state() { return state; } };
  document.body ? start() : addEventListener("DOMContentLoaded", start);
})();
