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
  const d = document, L = location, me = d.currentScript;
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
  } catch {
    // Storage blocked: the chat still works, without surviving page changes.
    pid = pid || Date.now();
  }
  const note = (value) => {
    // "" is no state: nothing to bring back.
    try { local.setItem(OPEN, value); } catch { /* blocked */ }
  };

  const host = d.createElement("livehelp-widget"),
    root = host.attachShadow({ mode: "open" });
  // The page's rules cannot reach inside the shadow root; on the host element
  // itself, "all:initial!important" undoes them (a shadow root's important
  // rules beat the page's), and the button and window are fixed on their own.
  // Shops place and colour it with custom properties on livehelp-widget
  // (--livehelp-bottom, --livehelp-side, --livehelp-color) and hide it on a
  // page with LiveHelp.hide().
  const b = "var(--livehelp-bottom," + cfg.bottom + "px)",
    s = "var(--livehelp-side,16px)",
    f = "position:fixed;z-index:2147483000;box-shadow:0 4px 16px #0004;right:" + s + ";bottom:",
    css = ":host{all:initial!important}"
    + "button{all:initial;" + f + b + ";display:flex;align-items:center;gap:8px;cursor:pointer;font:600 16px system-ui;color:#fff;background:var(--livehelp-color,var(--c,#1d6b3a));border-radius:24px;padding:12px 18px}"
    + "button:focus-visible{outline:3px solid #f5c518}"
    + "i{width:10px;height:10px;border-radius:50%;background:#fff}"
    + ".busy,.away{background:#8a5a00}.offline{background:#a4262c}"
    + "b{background:#fff;color:#a4262c;border-radius:9px;padding:0 6px;font-size:12px}b:empty{display:none}"
    + "div{display:none;" + f + "calc(" + b + " + 60px);width:min(380px,90vw);height:min(600px,80vh);border-radius:12px;overflow:hidden}"
    + ":host(.l) *{left:" + s + ";right:auto}.on{display:block}:host(.h) button{display:none}"
    + "iframe{border:0;width:100%;height:100%}"
    // A phone: a round button, its words kept for screen readers; open, the
    // window owns the screen and has its own close control.
    + "@media (max-width:480px){button{padding:20px 17px;border-radius:50%;font-size:0;gap:0}i{width:22px;height:16px;border-radius:8px}"
    + ".on{inset:0;width:auto;height:auto;border-radius:0}:host(.x) button{display:none}}";
  // A constructed sheet needs no inline <style>, so no CSP nonce either.
  (root.adoptedStyleSheets = [new CSSStyleSheet()])[0].replaceSync(css);

  const make = (tag, parent) => parent.appendChild(d.createElement(tag)),
    win = make("div", root),
    btn = make("button", root),
    mark = (name, on) => host.classList.toggle(name, on),
    paint = (color) => color && host.style.setProperty("--c", color);
  btn.ariaExpanded = false;
  make("i", btn);
  const txt = make("span", btn),
    num = make("b", btn);
  mark("l", cfg.position == "left");
  paint(cfg.color);

  let fr, state, tick, asked, count = 0;
  const query = (x) => {
      const q = new URLSearchParams({
        lang: cfg.lang || "", pid, page: L.href.slice(0, 2000),
        title: d.title.slice(0, 200), ref: d.referrer.slice(0, 2000), ...x,
      });
      if (cfg.department) q.set("department", cfg.department);
      return q;
    },
    post = (m) => fr && fr.contentWindow.postMessage({ livehelp: m }, base.origin),
    show = (data) => {
      state = btn.className = data.state;
      txt.textContent = data.label;
      paint(data.color);
      post({ type: "status", state });
      const inv = data.invitation;
      if (inv && inv.message != (asked || {}).message) {
        asked = inv;
        open({ invite: 1 });
        post({ type: "invitation", invitation: inv });
      }
    },
    poll = (x) => {
      clearTimeout(tick);
      fetch(new URL("status?" + query(x), base), { credentials: "omit" })
        .then((r) => r.json())
        .then(show, () => {})
        .finally(() => {
          // A hidden tab asks less often, but still counts as on the site.
          tick = setTimeout(poll, (d.hidden ? 60 : cfg.poll) * 1000);
        });
    },
    tally = (n) => { num.textContent = (count = n) || ""; },
    load = (x) => {
      if (fr) return;
      fr = make("iframe", win);
      fr.title = txt.textContent;
      fr.src = new URL("frame?" + query({ identity: cfg.identity || "", ...x }), base);
    },
    up = () => win.className,
    open = (x) => {
      load(x);
      win.className = "on";
      mark("x", 1);
      btn.ariaExpanded = true;
      tally(0);
      note("open");
      post({ type: "shown" });
      fr.focus();
    },
    close = (keep) => {
      win.className = "";
      mark("x", 0);
      btn.ariaExpanded = false;
      // "min" brings the chat back, minimised, on the next page of the shop.
      note(keep ? "min" : "");
      post({ type: "hidden" });
      btn.focus();
    };
  d.addEventListener("visibilitychange", () => d.hidden || poll());

  btn.onclick = () => (up() ? close(1) : open());
  addEventListener("message", (e) => {
    const m = e.data?.livehelp;
    if (!fr || e.source != fr.contentWindow || !m) return;
    const type = m.type;
    if (type == "close") close(m.keep);
    // The fr was still loading when the state or an invitation came.
    else if (type == "ready") post({ type: up() ? "shown" : "hidden", state, invitation: asked });
    else if (type == "unread" && !up()) tally(count + 1);
    else if (type == "ended") note("");
    else if (type == "navigate") {
      // Pushed by the operator; only pages of this shop, as the server checked.
      const url = new URL(m.url, L.href);
      if (url.origin == L.origin) L.assign(url);
    }
  });

  const start = () => {
    d.body.append(host);
    poll();
    const r = local && local.getItem(OPEN);
    if (r == "open") open();
    // Minimised: load the chat hidden, so the conversation goes on and can ring.
    else if (r == "min") load();
  };
  // For the shop's own "Chat with us" link, and pages without the button.
  window.LiveHelp = {
    open: () => open(), close: () => close(),
    hide: () => { close(); mark("h", 1); }, show: () => mark("h", 0),
    get state() { return state; },
  };
  d.body ? start() : addEventListener("DOMContentLoaded", start);
})();
