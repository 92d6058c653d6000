// Flask-LiveHelp loader: the only script a shop page loads before the chat is
// opened. It draws the launcher in a shadow root (the shop's CSS and ours never
// meet), asks for the operators' state now and then (which also tells the
// visitor list that this page is open), and creates the chat iframe on the
// first click or when an operator invites the visitor. Its one global is
// `LiveHelp`; a shop's stub of it ({q: ["open"]}, see docs/customising.md)
// holds the calls made before this script ran, and they are made now. No
// cookies: the tab's id lives in sessionStorage.
//
// Every byte here is loaded by every page of the shop, so it is written
// small: short names for things used often, and nothing the chat window
// (loaded later, in the iframe) can do instead.
(() => {
  const d = document, L = location, me = d.currentScript, early = window.LiveHelp;
  if (!me || early && !early.q) return;
  const cfg = JSON.parse(me.dataset.livehelp),
    base = new URL(cfg.base + "/", me.src);
  let local, tab, pid;
  try {
    local = localStorage;
    tab = sessionStorage;
    pid = tab.getItem("livehelp.pid") || crypto.getRandomValues(new Uint32Array(2)).join("");
    tab.setItem("livehelp.pid", pid);
  } catch {
    // Storage blocked: the chat still works, without surviving page changes.
    pid ||= Date.now();
  }
  // What the next page of the shop brings back: "open", "min" or "".
  const note = (value) => local?.setItem("livehelp.open", value);

  const host = d.createElement("livehelp-widget"),
    root = host.attachShadow({ mode: "open" });
  // The page's rules cannot reach inside the shadow root; on the host element
  // itself, "all:initial!important" undoes them (a shadow root's important
  // rules beat the page's), and the button and window are fixed on their own.
  // Shops place and colour it with custom properties on livehelp-widget
  // (--livehelp-bottom, --livehelp-side, --livehelp-color) and hide it on a
  // page with LiveHelp.hide(). The colour is the same in every state; the dot
  // tells the state apart (full: online, half: busy or away, a ring: offline)
  // besides the words, in the text colour the server chose for it (--k).
  const b = "var(--livehelp-bottom," + cfg.bottom + "px)",
    s = "var(--livehelp-side,16px)",
    f = "position:fixed;z-index:2147483000;box-shadow:0 4px 16px #0004;right:" + s + ";bottom:",
    css = ":host{all:initial!important}"
    + "button{all:initial;" + f + b + ";display:flex;align-items:center;gap:8px;cursor:pointer;font:600 16px system-ui;color:var(--livehelp-text,var(--k,#fff));background:var(--livehelp-color,var(--c,#1d6b3a));border-radius:24px;padding:12px 18px}"
    + "button:focus-visible{outline:3px solid #f5c518}"
    + "i{width:6px;height:6px;border:2px solid;border-radius:50%}"
    + ".online i{background:currentColor}.busy i,.away i{box-shadow:inset 0 3px}"
    + "b{background:#fff;color:#a4262c;border-radius:9px;padding:0 6px;font-size:12px}b:empty{display:none}"
    + "div{display:none;" + f + "calc(" + b + " + 60px);width:min(380px,90vw);height:min(600px,80vh);border-radius:12px;overflow:hidden}"
    + ":host(.l) *{left:" + s + ";right:auto}.on{display:block}:host(.h) button{display:none}"
    + "iframe{border:0;width:100%;height:100%}"
    // A phone: a round button, its words kept for screen readers; open, the
    // window owns the screen and has its own close control.
    + "@media(max-width:480px){button{padding:20px 17px;border-radius:50%;font-size:0;gap:0}i{width:18px;height:12px;border-radius:8px}"
    + ".on{inset:0;width:auto;height:auto;border-radius:0}.on+button{display:none}}";
  // A constructed sheet needs no inline <style>, so no CSP nonce either.
  (root.adoptedStyleSheets = [new CSSStyleSheet()])[0].replaceSync(css);

  const make = (tag, parent) => parent.appendChild(d.createElement(tag)),
    win = make("div", root),
    btn = make("button", root),
    mark = (name, on) => host.classList.toggle(name, on),
    // The shop's colour and place for this language, as the admin set them
    // now (the status answer carries them, so an open page follows).
    paint = (x) => {
      host.style.cssText = "--c:" + x.color + ";--k:" + x.ink;
      mark("l", x.position == "left");
    };
  btn.ariaExpanded = false;
  make("i", btn);
  const txt = make("span", btn),
    num = make("b", btn);

  let fr, state, tick, asked, label;
  const query = (x) => new URLSearchParams({
      lang: cfg.lang, pid, page: L.href.slice(0, 2000), department: cfg.department || "",
      title: d.title.slice(0, 200), ref: d.referrer.slice(0, 2000), ...x,
    }),
    // All the chat needs to know, each time: whether it is shown, the state,
    // and the operator's invitation (it shows each invitation once).
    tell = () => fr?.contentWindow.postMessage({ livehelp: { shown: !!up(), state, invitation: asked } }, base.origin),
    // Open, the button is the window's close control, and says so.
    say = () => { txt.textContent = up() ? cfg.close : label; },
    show = (data) => {
      state = btn.className = data.state;
      label = data.label;
      say();
      paint(data);
      const inv = data.invitation;
      if (inv && inv.message != asked?.message) asked = inv, open(1, { invite: 1 });
      tell();
    },
    poll = () => {
      clearTimeout(tick);
      fetch(base + "status?" + query(), { credentials: "omit" })
        .then((r) => r.json())
        .then(show, () => {})
        .finally(() => {
          // A hidden tab asks less often, but still counts as on the site.
          tick = setTimeout(poll, (d.hidden ? 60 : cfg.poll) * 1000);
        });
    },
    // Replies not seen yet: the chat counts them, and keeps the count
    // across pages.
    tally = (n) => { num.textContent = n || ""; },
    load = (x) => {
      if (fr) return;
      fr = make("iframe", win);
      fr.title = cfg.title;
      fr.src = base + "frame?" + query({ identity: cfg.identity || "", ...x });
    },
    up = () => win.className,
    // Open (on) or closed; closed with "keep", the chat comes back
    // minimised on the next page of the shop.
    open = (on, x, keep) => {
      if (on) load(x), tally(0);
      win.className = on ? "on" : "";
      btn.ariaExpanded = !!on;
      say();
      note(on ? "open" : keep ? "min" : "");
      tell();
      (on ? fr : btn).focus();
    };
  d.addEventListener("visibilitychange", () => d.hidden || poll());

  btn.onclick = () => open(!up(), 0, 1);
  addEventListener("message", (e) => {
    const m = e.data?.livehelp;
    if (!fr || e.source != fr.contentWindow || !m) return;
    const type = m.type;
    if (type == "close") open(0, 0, m.keep);
    // The frame was still loading when the state or an invitation came.
    else if (type == "ready") tell();
    else if (type == "unread") up() || tally(m.n);
    else if (type == "ended") note("");
    else if (type == "navigate") {
      // Pushed by the operator; only pages of this shop, as the server checked.
      const url = new URL(m.url, L.href);
      if (url.origin == L.origin) L.assign(url);
    }
  });

  const start = () => {
      // The tag brings the state as the page was made; the status answers
      // what it is now.
      show(cfg);
      d.body.append(host);
      poll();
      const r = local?.getItem("livehelp.open");
      if (r == "open") open(1);
      // Minimised: load the chat hidden, so the conversation goes on and can ring.
      else if (r == "min") load();
      early?.q.forEach((call) => api[call]());
    },
    // For the shop's own "Chat with us" link, and pages without the button.
    // Hiding hides the button only: an open or minimised chat stays as it is.
    api = window.LiveHelp = {
      open: () => open(1), close: () => open(),
      hide: () => mark("h", 1), show: () => mark("h", 0),
      get state() { return state; },
    };
  d.body ? start() : addEventListener("DOMContentLoaded", start);
})();
