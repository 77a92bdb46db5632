/* qa widget: <script src="http://HOST:PORT/widget.js" async></script> adds a floating chat button that opens
   the assistant (an iframe of HOST:PORT/embed) in a panel. Everything it loads comes from HOST:PORT.
   Options, as data- attributes on the script tag:
     data-title="Ask the docs"   panel title           data-position="right" | "left"
     data-color="#2563eb"        button/header colour  data-text-color="#ffffff"
     data-open="true"            open on page load     data-width="380" data-height="560" (pixels)  */
(function () {
  "use strict";
  var script = document.currentScript || (function () {
    var all = document.querySelectorAll("script[src]");
    for (var i = all.length - 1; i >= 0; i--) if (/\/widget\.js(\?|$)/.test(all[i].src)) return all[i];
    return null;
  })();
  if (!script || window.__qaWidgetLoaded) return;
  window.__qaWidgetLoaded = true;

  // the folder widget.js was served from: behind a proxy at https://site/qa/ the panel is /qa/embed
  var from = new URL(script.src, location.href);
  var base = from.origin + from.pathname.replace(/\/[^\/]*$/, "");
  var d = script.dataset;
  var COLOR = /^(#[0-9a-f]{3,8}|[a-z]+|rgba?\([0-9.,\s%]+\))$/i;
  var color = COLOR.test(d.color || "") ? d.color : "#2563eb";
  var textColor = COLOR.test(d.textColor || "") ? d.textColor : "#ffffff";
  var title = (d.title || "Ask the documents").slice(0, 80);
  var side = d.position === "left" ? "left" : "right";
  var width = Math.min(Math.max(parseInt(d.width, 10) || 380, 280), 800);
  var height = Math.min(Math.max(parseInt(d.height, 10) || 560, 320), 1000);

  var host = document.createElement("div");
  host.id = "qa-widget";
  host.style.cssText = "position:fixed;bottom:20px;" + side + ":20px;z-index:2147483000;";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

  var style = document.createElement("style");
  style.textContent =
    ".btn{width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);" +
    "display:flex;align-items:center;justify-content:center;background:" + color + ";color:" + textColor + "}" +
    ".btn:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}" +
    ".panel{position:absolute;bottom:70px;" + side + ":0;width:" + width + "px;height:" + height + "px;" +
    "max-width:calc(100vw - 40px);max-height:calc(100vh - 110px);background:#fff;border-radius:12px;overflow:hidden;" +
    "box-shadow:0 10px 30px rgba(0,0,0,.3);display:none;flex-direction:column}" +
    ".panel.open{display:flex}" +
    ".head{display:flex;align-items:center;justify-content:space-between;padding:10px 14px;font:600 15px system-ui,sans-serif;" +
    "background:" + color + ";color:" + textColor + "}" +
    ".close{background:none;border:0;color:inherit;font-size:22px;line-height:1;cursor:pointer}" +
    "iframe{border:0;flex:1;width:100%}";
  root.appendChild(style);

  var panel = document.createElement("div");
  panel.className = "panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  var head = document.createElement("div");
  head.className = "head";
  var name = document.createElement("span");
  name.textContent = title;
  var close = document.createElement("button");
  close.className = "close";
  close.setAttribute("aria-label", "Close");
  close.textContent = "\u00d7";
  head.appendChild(name);
  head.appendChild(close);
  panel.appendChild(head);
  root.appendChild(panel);

  var button = document.createElement("button");
  button.className = "btn";
  button.id = "qa-widget-button";
  button.setAttribute("aria-label", title);
  button.setAttribute("aria-expanded", "false");
  button.innerHTML = '<svg width="26" height="26" viewBox="0 0 24 24" fill="none" stroke="currentColor" ' +
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">' +
    '<path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/></svg>';
  root.appendChild(button);

  var frame = null;
  function setOpen(open) {
    if (open && !frame) {  // the chat loads on first open
      frame = document.createElement("iframe");
      frame.title = title;
      frame.src = base + "/embed?color=" + encodeURIComponent(color) + "&title=" + encodeURIComponent(title);
      panel.appendChild(frame);
    }
    panel.classList.toggle("open", open);
    button.setAttribute("aria-expanded", String(open));
  }
  button.addEventListener("click", function () { setOpen(!panel.classList.contains("open")); });
  close.addEventListener("click", function () { setOpen(false); });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") setOpen(false); });

  function mount() {
    document.body.appendChild(host);
    if (d.open === "true") setOpen(true);
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
